"""Reading text with a trained model.

  reader    the Reader API (no model code: runs exported files alone)
  load      Readers of run folders, exported files, pretrained names, and
            random weights
  ocrx      the `.ocrx` file format
  export    traces a model per platform and writes `.ocrx` files
  quantize  int8 and bfloat16 weight conversion
"""
