// todoscale: small enhancements over forms that work without JavaScript.
// - ticking a todo saves it in place, without reloading the page;
// - forms with data-confirm ask before they are sent;
// - live updates (Socket.IO, same origin, the session cookie): todos of the shown list
//   appear, change and disappear, and the notification badge counts up. Without the
//   client script or a connection the pages simply stay as the server rendered them;
// - export and import panels: the bar moves with job.updated events (polling the panel
//   while there is no connection); a finished job's panel comes afresh from the server
//   (its link, or its error in the page's language), and a finished import's todos appear;
// - the browser's time zone is told to the server (a cookie), which shows times in it
//   unless the user chose one in their profile; live updates show times in the zone the
//   page was rendered in (<html data-time-zone>), so they match what is around them.
(function () {
  "use strict";

  function tellTimeZone() {
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (error) {
      return;
    }
    if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) {
      return; // IANA names need no escaping in a cookie; anything else is not one
    }
    var cookie = "todoscale_tz=" + zone;
    if (document.cookie.split("; ").indexOf(cookie) === -1) {
      var secure = window.location.protocol === "https:" ? "; Secure" : "";
      document.cookie = cookie + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
    }
  }

  tellTimeZone();

  function updateTodo(todo) {
    // Show a todo's new state ({id, completed}) in the page, if the page shows it.
    var item = document.getElementById("todo-" + todo.id);
    if (!item) {
      return false;
    }
    if (typeof todo.title === "string") {
      setText(item.querySelector(".todo-title"), todo.title);
      relabel(item, todo.title);
    }
    if (typeof todo.notes === "string") {
      setNotes(item, todo.notes);
    }
    if ("due_at" in todo) {
      setDue(item, todo.due_at);
    }
    item.classList.toggle("is-done", Boolean(todo.completed));
    var button = item.querySelector(".check");
    if (button) {
      button.setAttribute("aria-pressed", todo.completed ? "true" : "false");
    }
    var next = item.querySelector('.toggle input[name="completed"]');
    if (next) {
      next.value = todo.completed ? "0" : "1";
    }
    return true;
  }

  function onToggle(event) {
    var form = event.target.closest("form.toggle");
    if (!form || !window.fetch) {
      return;
    }
    event.preventDefault();
    var button = form.querySelector(".check");
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) {
        throw new Error(response.status);
      }
      return response.json();
    }).then(function (todo) {
      updateTodo(todo);
      button.disabled = false;
      button.focus();
    }).catch(function () {
      form.submit(); // fall back to the plain form: the server shows what went wrong
    });
  }

  function onConfirm(event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  }

  document.addEventListener("submit", function (event) {
    onConfirm(event);
    if (!event.defaultPrevented) {
      onToggle(event);
    }
  });

  // Live updates ---------------------------------------------------------------------------

  var LIVE_ID = "00000000000000000000000000000000";
  var TITLE = "%%1%%";
  var NOTES = "%%2%%";
  var WHEN = "%%3%%";

  function setText(node, text) {
    if (node) {
      node.textContent = text;
    }
  }

  function relabel(item, title) {
    // Labels such as "Done: <title>" keep their translated words; only the title changes.
    item.querySelectorAll("[data-label]").forEach(function (node) {
      node.setAttribute("aria-label", node.getAttribute("data-label").split(TITLE).join(title));
    });
  }

  function setNotes(item, notes) {
    var node = item.querySelector(".todo-notes");
    if (!notes) {
      if (node) {
        node.remove();
      }
      return;
    }
    if (!node) {
      node = document.createElement("p");
      node.className = "todo-notes";
      item.querySelector(".todo-title").after(node);
    }
    node.textContent = notes;
  }

  function shownList() {
    return document.getElementById("todos");
  }

  function formatTime(iso, options) {
    // In the page's language and time zone, as the server formats (Babel's "short" and
    // "medium" are CLDR's, like Intl's dateStyle and timeStyle).
    var root = document.documentElement;
    var zone = root.getAttribute("data-time-zone");
    try {
      return new Intl.DateTimeFormat(root.lang || undefined,
        Object.assign({ timeZone: zone || undefined }, options)).format(new Date(iso));
    } catch (error) {
      return iso;
    }
  }

  function fillTimes(item, todo, template) {
    var added = item.querySelector(".meta > time");
    if (added) {
      added.setAttribute("datetime", todo.created_at);
      added.textContent = template.getAttribute("data-added")
        .split(WHEN).join(formatTime(todo.created_at, { dateStyle: "short", timeStyle: "short" }));
    }
    setDue(item, todo.due_at);
  }

  function setDue(item, dueAt) {
    // The item's "Due ..." line: taken from the <template> item when the item has none yet.
    var template = document.getElementById("todo-template");
    var due = item.querySelector(".due");
    if (!dueAt || !template) {
      if (due) {
        due.remove();
      }
      return;
    }
    if (!due) {
      due = template.content.querySelector(".due").cloneNode(true);
      item.querySelector(".meta").append(due);
    }
    var time = due.querySelector("time");
    time.setAttribute("datetime", dueAt);
    time.textContent = template.getAttribute("data-due")
      .split(WHEN).join(formatTime(dueAt, { dateStyle: "medium", timeStyle: "medium" }));
  }

  function buildTodo(todo) {
    // A copy of the server-rendered <template> item, its markers replaced: data only ever
    // goes into textContent and attribute values, never into HTML.
    var template = document.getElementById("todo-template");
    if (!template) {
      return null;
    }
    var item = template.content.querySelector(".todo").cloneNode(true);
    item.id = "todo-" + todo.id;
    item.setAttribute("data-todo-id", todo.id);
    item.querySelectorAll("[action], [href]").forEach(function (node) {
      var name = node.hasAttribute("action") ? "action" : "href";
      node.setAttribute(name, node.getAttribute(name).split(LIVE_ID).join(todo.id));
    });
    setText(item.querySelector(".todo-title"), todo.title);
    relabel(item, todo.title);
    setNotes(item, todo.notes);
    fillTimes(item, todo, template);
    updateCompleted(item, todo.completed);
    return item;
  }

  function updateCompleted(item, completed) {
    item.classList.toggle("is-done", Boolean(completed));
    var button = item.querySelector(".check");
    if (button) {
      button.setAttribute("aria-pressed", completed ? "true" : "false");
    }
    var next = item.querySelector('.toggle input[name="completed"]');
    if (next) {
      next.value = completed ? "0" : "1";
    }
  }

  function showEmpty() {
    var list = shownList();
    var empty = document.getElementById("todos-empty");
    var none = !list || !list.querySelector(".todo");
    if (list) {
      list.hidden = none;
    }
    if (empty) {
      empty.hidden = !none;
    }
  }

  function bumpCount(listId, delta) {
    var link = document.querySelector('.list-nav a[href$="/lists/' + listId + '"] .count');
    if (link) {
      link.textContent = String(Math.max(0, Number(link.textContent) + delta));
    }
  }

  function insertTodo(todo) {
    // New todos go on top of the list's first page, the one that shows the newest.
    var list = shownList();
    if (!list || list.getAttribute("data-list-id") !== todo.list_id ||
        !list.hasAttribute("data-first-page") || document.getElementById("todo-" + todo.id)) {
      return false;
    }
    var item = buildTodo(todo);
    if (!item) {
      return false;
    }
    item.classList.add("is-new");
    list.prepend(item);
    showEmpty();
    return true;
  }

  function removeTodo(todoId) {
    var item = document.getElementById("todo-" + todoId);
    if (item && item.closest("#todos")) {
      item.remove();
      showEmpty();
    }
  }

  function onCreated(todo) {
    insertTodo(todo);
    bumpCount(todo.list_id, 1);
  }

  function onUpdated(todo) {
    var list = shownList();
    var item = document.getElementById("todo-" + todo.id);
    if (item && list && list.getAttribute("data-list-id") !== todo.list_id) {
      removeTodo(todo.id); // moved to another list
      return;
    }
    if (!updateTodo(todo)) {
      insertTodo(todo); // moved into the shown list
    }
  }

  function onDeleted(payload) {
    removeTodo(payload.id);
    bumpCount(payload.list_id, -1);
  }

  function onListUpdated(todoList) {
    var list = shownList();
    var heading = document.getElementById("list-heading");
    if (todoList.is_default) {
      return; // the Inbox keeps its translated name
    }
    if (list && heading && list.getAttribute("data-list-id") === todoList.id) {
      heading.textContent = todoList.name;
    }
    var link = document.querySelector('.list-nav a[href$="/lists/' + todoList.id + '"] .list-nav-name');
    setText(link, todoList.name);
  }

  function onListDeleted(payload) {
    var list = shownList();
    if (list && list.getAttribute("data-list-id") === payload.id) {
      window.location.assign("/"); // the list is gone: go home, the server says why not
      return;
    }
    var link = document.querySelector('.list-nav a[href$="/lists/' + payload.id + '"]');
    if (link && link.parentNode) {
      link.parentNode.remove();
    }
  }

  function onNotification() {
    var badge = document.getElementById("notification-count");
    if (badge) {
      var count = Number(badge.getAttribute("data-count") || "0") + 1;
      badge.setAttribute("data-count", String(count));
      badge.textContent = String(count);
    }
  }

  // Exports and imports ---------------------------------------------------------------

  var POLL_MS = 2000;
  var FINISHED = { succeeded: true, failed: true };

  function jobPanel(jobId) {
    return document.querySelector('.job[data-job-id="' + jobId + '"]');
  }

  function showProgress(panel, job) {
    panel.setAttribute("data-status", job.status);
    panel.setAttribute("data-progress", String(job.progress));
    var bar = panel.querySelector(".job-bar");
    if (bar) {
      bar.value = job.progress;
      bar.textContent = job.progress + " %";
    }
    setText(panel.querySelector(".job-percent"), job.progress + " %");
    var state = panel.getAttribute("data-" + job.status);
    if (state) {
      setText(panel.querySelector(".job-state"), state);
    }
  }

  function replaceFrom(html, selector) {
    // Nodes of a page our server rendered (same origin): parsed inert, then moved in.
    var doc = new DOMParser().parseFromString(html, "text/html");
    return doc.querySelector(selector);
  }

  function refreshTodos(listId) {
    // A finished import: the list's first page again, from the server, without a reload.
    var list = shownList();
    if (!list || list.getAttribute("data-list-id") !== listId || !list.hasAttribute("data-first-page")) {
      return;
    }
    fetch(window.location.pathname, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : Promise.reject(new Error(response.status));
    }).then(function (html) {
      var fresh = replaceFrom(html, "#todos");
      var current = shownList();
      if (fresh && current) {
        current.replaceWith(fresh);
        showEmpty();
      }
      var count = replaceFrom(html, '.list-nav a[href$="/lists/' + listId + '"] .count');
      var link = document.querySelector('.list-nav a[href$="/lists/' + listId + '"] .count');
      if (count && link) {
        link.textContent = count.textContent;
      }
    }).catch(function () {});
  }

  function refreshPanel(panel) {
    var wasFinished = FINISHED[panel.getAttribute("data-status")];
    fetch(panel.getAttribute("data-panel-url"), { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : Promise.reject(new Error(response.status));
    }).then(function (html) {
      var fresh = replaceFrom("<body>" + html + "</body>", ".job");
      if (!fresh || !panel.parentNode) {
        return;
      }
      panel.replaceWith(fresh);
      var status = fresh.getAttribute("data-status");
      if (!wasFinished && status === "succeeded" && fresh.getAttribute("data-kind") === "import") {
        refreshTodos(fresh.getAttribute("data-list-id"));
      }
    }).catch(function () {});
  }

  function onJobUpdated(job) {
    var panel = jobPanel(job.id);
    if (!panel || FINISHED[panel.getAttribute("data-status")]) {
      return;
    }
    if (FINISHED[job.status]) {
      showProgress(panel, { status: panel.getAttribute("data-status"), progress: job.progress });
      refreshPanel(panel);
    } else if (job.progress >= Number(panel.getAttribute("data-progress"))) {
      showProgress(panel, job);
    }
  }

  function unfinishedPanels() {
    return Array.prototype.filter.call(document.querySelectorAll(".job[data-job-id]"), function (panel) {
      return !FINISHED[panel.getAttribute("data-status")];
    });
  }

  function pollJobs(socket) {
    // Without a live connection, ask the server; with one, events do it (and once after
    // each connect, for what happened while there was none).
    window.setInterval(function () {
      if (!socket || !socket.connected) {
        unfinishedPanels().forEach(refreshPanel);
      }
    }, POLL_MS);
    if (socket) {
      socket.on("connect", function () {
        unfinishedPanels().forEach(refreshPanel);
      });
    }
  }

  function connect() {
    // Only for a logged-in page (the client script is served with those alone).
    if (typeof window.io !== "function" || !document.getElementById("notification-count")) {
      return null;
    }
    // The client reconnects by itself, backing off to at most 5 s between attempts (the
    // client's own default): at 10 s, a service restarted under load (10-15 s) was answering
    // again for up to 10 s before a client's next attempt (docs/RELIABILITY.md).
    // The Socket.IO service is on the page's own origin, or on a port of its own of the
    // page's host (todoscale run: PORT + 1), reached by the page's own host name.
    var port = document.documentElement.getAttribute("data-socketio-port");
    var options = { withCredentials: true, reconnectionDelayMax: 5000 };
    var socket = port
      ? window.io(window.location.protocol + "//" + window.location.hostname + ":" + port, options)
      : window.io(options);
    socket.on("todo.created", onCreated);
    socket.on("todo.updated", onUpdated);
    socket.on("todo.deleted", onDeleted);
    socket.on("list.updated", onListUpdated);
    socket.on("list.deleted", onListDeleted);
    socket.on("notification.created", onNotification);
    socket.on("job.updated", onJobUpdated);
    socket.on("connect", function () {
      document.documentElement.setAttribute("data-live", "connected");
    });
    socket.on("disconnect", function () {
      document.documentElement.setAttribute("data-live", "disconnected");
    });
    return socket;
  }

  var socket = connect();
  if (window.fetch && window.DOMParser && unfinishedPanels().length) {
    pollJobs(socket);
  }
  window.todoscale = { updateTodo: updateTodo, insertTodo: insertTodo, socket: socket };
})();
