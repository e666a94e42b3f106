"""Where and how a run executes: the device and dtype (`device`), the measurement cache (`cache`), the
batching mode (`batching`), data-parallel ranks (`parallel`, `launch`) and stop signals (`signals`)."""
