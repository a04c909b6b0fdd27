"""The reading of a page: its lines in reading order, with geometry."""

import dataclasses

Box = tuple[int, int, int, int]


@dataclasses.dataclass
class LineResult:
  """One text line of a page.

  Attributes:
    polygon: [(x, y)] corners on the input page (clockwise from top left);
      a rotated rectangle when the page was deskewed.
    box: (x0, y0, x1, y1) integer box around the polygon, x1 and y1
      exclusive, clipped to the page.
    text: the normalised reading.
    confidence: probability of the line's text, in [0, 1].
    score: the detector's confidence that this is a line, in [0, 1].
  """
  polygon: list[tuple[float, float]]
  box: Box
  text: str
  confidence: float
  score: float = 1.0


@dataclasses.dataclass
class PageResult:
  """The reading of one page.

  Attributes:
    source: the file (or a description of an in-memory image).
    page_number: 1-based page number in the file.
    width, height: the page size in pixels (0 when it could not be read).
    angle: the skew found and corrected, degrees counter-clockwise.
    lines: the lines in reading order.
    error: why the page could not be read; None on success.
    dpi: the page's resolution when known (PDF pages), else None.
  """
  source: str
  page_number: int = 1
  width: int = 0
  height: int = 0
  angle: float = 0.0
  lines: list[LineResult] = dataclasses.field(default_factory=list)
  error: str | None = None
  dpi: float | None = None

  @property
  def ok(self) -> bool:
    return self.error is None

  @property
  def text(self) -> str:
    """The lines' text in reading order, one line each."""
    return '\n'.join(line.text for line in self.lines)
