"""The edgepick command line: the one layer that imports every other package."""
