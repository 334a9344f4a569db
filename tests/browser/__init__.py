"""Headless Chromium against a local stack: the web console as a user sees it."""
