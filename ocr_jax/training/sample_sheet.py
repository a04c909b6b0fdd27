"""Sample transcriptions for people: a TensorBoard table and a PNG sheet.

The samples are those of `evaluation.evaluate`: dicts with 'image' (uint8
[height, width, 3]), 'reference', 'prediction' and 'confidence'.
"""

from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from ocr_jax.data import render


def format_samples(samples) -> str:
  """Markdown table of sample transcriptions for TensorBoard."""
  rows = ['| reference | prediction | confidence | ok |', '|---|---|---|---|']
  for sample in samples:
    ok = 'yes' if sample['reference'] == sample['prediction'] else 'NO'
    rows.append(f"| {sample['reference']} | {sample['prediction']} | "
                f"{sample['confidence']:.3f} | {ok} |")
  return '\n'.join(rows)


def label_font(size: int) -> ImageFont.FreeTypeFont:
  """A Khmer font shaped by raqm (KhmerOS when installed)."""
  fonts = render.find_khmer_fonts(['Khmer OS']) or render.find_khmer_fonts()
  if not fonts:
    return ImageFont.load_default(size)
  render.check_raqm()
  return ImageFont.truetype(fonts[0].path, size,
                            layout_engine=ImageFont.Layout.RAQM)


def save_samples_png(samples, path: str, text_height: int = 28) -> None:
  """Writes a column of sample images, each with its reference/prediction.

  Text is drawn with Pillow's raqm layout and a Khmer font so that it is
  shaped correctly (matplotlib cannot shape Khmer).
  """
  if not samples:
    return
  font = label_font(text_height - 8)
  width = max(max(s['image'].shape[1] for s in samples), 360)
  rows = []
  for sample in samples:
    image = Image.fromarray(sample['image'])
    row = Image.new('RGB', (width, image.height + 2 * text_height), 'white')
    row.paste(image, (0, 0))
    draw = ImageDraw.Draw(row)
    ok = sample['reference'] == sample['prediction']
    draw.text((4, image.height), 'ref:  ' + sample['reference'], fill='black',
              font=font)
    draw.text((4, image.height + text_height),
              f"pred: {sample['prediction']}  ({sample['confidence']:.2f})",
              fill=(0, 128, 0) if ok else (200, 0, 0), font=font)
    rows.append(row)
  sheet = Image.new('RGB', (width, sum(r.height + 6 for r in rows)), 'gray')
  top = 0
  for row in rows:
    sheet.paste(row, (0, top))
    top += row.height + 6
  sheet.save(path)
