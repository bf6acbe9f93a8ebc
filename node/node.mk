# Targets for node/ (included by the top-level Makefile). Under construction.
