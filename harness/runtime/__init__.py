"""Where and how a run executes: the device and dtype (`device`), data-parallel ranks
(`parallel`, `launch`), and stop signals (`signals`)."""
