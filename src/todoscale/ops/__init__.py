"""Operations: request ids, logs, security headers, health checks."""
