# Targets for fuzz/ (included by the top-level Makefile). Under construction.
