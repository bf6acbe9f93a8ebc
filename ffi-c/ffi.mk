# Targets for ffi-c/ (included by the top-level Makefile). Under construction.
