"""The JSON API, `/api/v1`: one blueprint per resource, nested under `routes.bp`.

The package imports none of them: the Celery worker sends live updates in the API's JSON
(`schemas`) and imports that module alone, without the routes and their libraries
(core.create_worker_app)."""
