"""Every signal the services send, always after their commit (or, for an outcome that
changes nothing, once it is known). A leaf: imports nothing of ours.

Receivers (live updates, background jobs, caches) connect in their own `init_app`; a
receiver's failure is its own to log and never undoes the committed change.
"""

from blinker import Namespace

_signals = Namespace()

# sender: services.accounts.register_user; kwargs: user
user_registered = _signals.signal("user-registered")
# sender: services.accounts.authenticate, after verifying a password; kwargs: ok (bool).
# The login throttle counts failed verifications by it.
password_checked = _signals.signal("password-checked")
# sender: services.accounts.revoke_token, services.tokens (revoke_user_token,
# revoke_user_tokens), services.sessions.end_user_sessions,
# services.profile.change_password; kwargs: user_id
tokens_revoked = _signals.signal("tokens-revoked")
# sender: services.sessions.end_user_sessions, services.profile.change_password; kwargs: user_id
sessions_ended = _signals.signal("sessions-ended")
# sender: services.todos.create_todo; kwargs: todo (an import sends one list_updated instead)
todo_created = _signals.signal("todo-created")
# sender: services.todos.edit_todo; kwargs: todo, previous_list_id
todo_updated = _signals.signal("todo-updated")
# sender: services.todos.delete_todo; kwargs: todo_id, list_id
todo_deleted = _signals.signal("todo-deleted")
# sender: services.lists (create_list, rename_list); kwargs: todo_list
list_updated = _signals.signal("list-updated")
# sender: services.lists.delete_list; kwargs: list_id, member_ids
list_deleted = _signals.signal("list-deleted")
# sender: services.lists (share_list, remove_member); kwargs: list_id, user_id, added
membership_changed = _signals.signal("membership-changed")
# sender: services.jobs (create_export, create_import, requeue_stalled_jobs); kwargs: job_id.
# Receivers enqueue the job's work; the row is already committed.
job_queued = _signals.signal("job-queued")
# sender: services.jobs (every status or progress change); kwargs: job
job_updated = _signals.signal("job-updated")
# sender: services.reminders.send_due_reminders; kwargs: notifications (a list, any users)
notifications_created = _signals.signal("notifications-created")
