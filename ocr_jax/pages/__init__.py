"""Whole pages: inputs (images, TIFF, PDF), line detection, reading order,
recognition of the lines, and outputs (text, hOCR, JSON, searchable PDF).

  inputs       files -> pages (RGB uint8), one page at a time
  layout       deskew, probability map -> line boxes, reading order
  detector     the learned line detector (Flax) and its loss
  page_reader  PageReader: page -> PageResult
  outputs      PageResults -> text, hOCR, JSON, searchable PDF
"""
