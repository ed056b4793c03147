"""Pure SMS logic: phone numbers, segments and cost, templates, redaction. No I/O."""
