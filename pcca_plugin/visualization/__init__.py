"""Pictures and videos of results: linked tubes drawn on frames."""

from .tubes import draw_tubes, read_video_frames, tubes_for_video, write_gif, write_mp4

__all__ = ['draw_tubes', 'read_video_frames', 'tubes_for_video', 'write_gif', 'write_mp4']
