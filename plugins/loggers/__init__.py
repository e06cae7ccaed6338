"""Built-in metric loggers."""
