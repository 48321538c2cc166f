"""The staff console: a small static web app served by the API at ``/``.

No build step and no third-party front-end code: plain HTML, CSS and one
JavaScript file (``static/``), talking to the same ``/v1`` endpoints as any
client, with the API key the user signs in with (or none, behind an SSO proxy
that adds one, or in the demo where keys are off).
"""
