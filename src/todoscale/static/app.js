// todoscale: small enhancements over forms that work without JavaScript.
// - ticking a todo saves it in place, without reloading the page;
// - forms with data-confirm ask before they are sent.
// `window.todoscale.updateTodo` is where live updates (Socket.IO) plug in.
(function () {
  "use strict";

  function updateTodo(todo) {
    // Show a todo's new state ({id, completed}) in the page, if the page shows it.
    var item = document.getElementById("todo-" + todo.id);
    if (!item) {
      return false;
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

  window.todoscale = { updateTodo: updateTodo };
})();
