"""Export errors.

::

    ExportError              any failed export (CLI exit status 1)
    ├── SourceError          the checkpoint is missing, unreadable or of an unknown kind
    ├── VersionExists        the requested version is taken (versions are never overwritten)
    └── ValidationError      the exported graph does not match its source
        ├── ShapeError       an output has the wrong shape
        ├── ParityError      values differ beyond tolerance
        └── QualityError     a quantised graph transcribes worse than its float source
"""


class ExportError(Exception):
    """An export that could not be completed."""


class SourceError(ExportError):
    """The source checkpoint cannot be read."""


class VersionExists(ExportError):
    """The target version already exists."""


class ValidationError(ExportError):
    """The exported model does not match the source framework."""


class ShapeError(ValidationError):
    """An exported output has a different shape than the source's."""


class ParityError(ValidationError):
    """Exported outputs differ from the source's beyond tolerance."""


class QualityError(ValidationError):
    """A quantised graph's error rates are worse than its float source's beyond the
    allowed margin."""
