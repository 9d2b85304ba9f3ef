"""A preview of a table of images (``fcnn simulate galaxies --preview``): its first images in a
grid, each titled with its label."""

from fcnn_cli.core.errors import FcnnError
from fcnn_cli.results.plots.figures import drawing, pyplot, save

GRID_ROWS, GRID_COLS = 4, 6  # galaxy_grid's images


def check_png(path):
    if not str(path).lower().endswith(".png"):
        raise FcnnError(f"{path}: the preview is a PNG image; name it *.png")


@drawing()
def galaxy_grid(table, path, rows=GRID_ROWS, cols=GRID_COLS):
    """A grid of the first images in a galaxy table, each titled with its label."""
    import numpy as np

    plt = pyplot()
    check_png(path)
    label = table.targets[0]
    pixels = table.frame.drop(columns=[label]).to_numpy(dtype=np.float32)
    size = int(round(pixels.shape[1] ** 0.5))
    count = min(rows * cols, len(pixels))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < count:
            ax.imshow(pixels[i].reshape(size, size), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(str(table.frame[label].iloc[i]), fontsize=9)
    fig.tight_layout()
    save(fig, path)
