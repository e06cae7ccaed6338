"""seqkit's built-in plugins. Each module registers its components through the public hooks,
exactly as a third-party plugin does; the core finds them by walking this package."""
