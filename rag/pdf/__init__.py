"""Reading PDFs as papers (pypdfium2): text lines with their layout, clean-up, structure, metadata."""
