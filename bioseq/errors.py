"""The one exception type users see: a single line naming the file, record and problem."""


class BioseqError(ValueError):
    """Bad input or configuration. `str(err)` is a complete one-line message."""

    def __init__(self, message: str, *, path: str | None = None, record: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record '{record}'")
        prefix = ": ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(" ".join(text.split("\n")))
        self.path = path
        self.record = record
