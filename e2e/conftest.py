"""Puts e2e/ on the import path so every suite can `import support` (the shared gateway
launcher and raw-socket helpers)."""
