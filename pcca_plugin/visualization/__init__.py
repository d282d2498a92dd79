"""Pictures and videos of results: linked tubes drawn on frames."""

from .training_curves import (
    RunCurves,
    ScalarsNotFoundError,
    find_scalar_files,
    load_run,
    plot_curves,
    unique_labels,
)
from .tubes import (
    LabelBox,
    TubeDrawing,
    draw_tubes,
    place_labels,
    read_video_frames,
    render_tubes,
    tube_colour,
    tubes_for_video,
    write_gif,
    write_mp4,
)

__all__ = [
    'LabelBox',
    'TubeDrawing',
    'draw_tubes',
    'place_labels',
    'read_video_frames',
    'render_tubes',
    'tube_colour',
    'tubes_for_video',
    'write_gif',
    'write_mp4',
    'RunCurves',
    'ScalarsNotFoundError',
    'find_scalar_files',
    'load_run',
    'plot_curves',
    'unique_labels',
]
