# Targets for py/ (included by the top-level Makefile). Under construction.
