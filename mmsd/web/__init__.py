"""`mmsd serve`: the tool in a browser, on the user's own machine and offline.

Layers, each importing only those below it:

* `pipeline`: what one upload goes through (`handle_upload`), a plain function over the
  package's own encode, decode and metrics;
* `jobs`: uploads run one at a time, in order, in a temporary folder removed at exit;
* `app`: the Starlette app: the page, its static files, the upload and status endpoints;
* `serve`: the command (`add_arguments`, `run`).
"""
