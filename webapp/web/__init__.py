"""Request plumbing the blueprints share: base form, templates, headers, request log."""
