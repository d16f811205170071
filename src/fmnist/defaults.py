"""User-facing defaults shared by the library and the command line.

They live in a module that imports nothing, so a command can show them in its `--help` without
loading NumPy, Pillow or SciPy; the modules that apply them (`fmnist.images.decode`,
`fmnist.images.photo`, `fmnist.predict`) import them from here, so each value exists once.
"""

# 40 megapixels of decoded image: a full-resolution phone photo (and any phone JPEG, which is
# decoded at a reduced scale). At 4 bytes a pixel the decode buffer stays under 160 MB. The one
# pixel limit of every image input (command line, --data folders, the server).
MAX_PIXELS = 40_000_000

# "v2": colour background model and mask (convert_v2.py); "paper": the dataset paper's recipe.
PIPELINES = ("v2", "paper")
DEFAULT_PIPELINE = "v2"

# A prediction whose top probability is below this is flagged "not sure".
UNSURE_BELOW = 0.6
# Images scored per model call by `fmnist predict`.
DEFAULT_BATCH = 256
