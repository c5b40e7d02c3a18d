"""Running the app in production: the HTTP servers and the local cluster."""
