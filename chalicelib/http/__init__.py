"""The HTTP edge: routes, the one error table, presenters and authentication."""
