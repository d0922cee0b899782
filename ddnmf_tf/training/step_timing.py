"""The training steps' own time in one process, the first step of each step function (which traces and compiles
it) apart from the others: what train.run's final line reports as images per second."""

import time


class StepTimer:
    """Seconds and images of the steps timed with `time`, the first of each kind (DDNMF, head) kept apart."""

    def __init__(self):
        self.first_seconds, self.seconds, self.images = 0.0, 0.0, 0
        self._kinds = set()

    def time(self, kind, step, images):
        """Run `step()` (a training step that returns once its losses are read), counting `images`; returns its
        result."""
        started = time.perf_counter()
        result = step()
        elapsed = time.perf_counter() - started
        if kind in self._kinds:
            self.seconds += elapsed
            self.images += images
        else:
            self._kinds.add(kind)
            self.first_seconds += elapsed
        return result

    def describe(self):
        """'first step, compiling: 16.9 s; 812 images/s after it' ('first steps ... after them' with a head), or ''
        when no step was timed."""
        if not self._kinds:
            return ""
        first, it = ("first steps", "them") if len(self._kinds) > 1 else ("first step", "it")
        rate = f"{self.images / self.seconds:.0f} images/s after {it}" if self.seconds else "no later step to time"
        return f"{first}, compiling: {self.first_seconds:.1f} s; {rate}"
