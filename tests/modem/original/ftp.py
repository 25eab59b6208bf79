"""The original's ``FileTransferProtocol`` (FileTransferProtocol.java, 2b277c6), line by line.

``java.nio.file`` on a Unix file system is modelled with ``os.path``: ``Paths.get`` keeps the text
(a ``\\`` is an ordinary character), ``resolve`` of an absolute path gives that path, nothing is
sanitised. ``Files.newDirectoryStream`` lists in the file system's order (``os.scandir``).
"""

from __future__ import annotations

import os

from tests.modem.original.host import Connection
from tests.modem.original.jvm import Blocking, IllegalArgumentException, IOException, Scheduler


def _paths_get(text: str) -> str:
    """``Paths.get(text)``: a Unix path, redundant slashes and a trailing one dropped."""
    if not text:
        return ""
    parts = [p for p in text.split("/") if p]
    return ("/" if text.startswith("/") else "") + "/".join(parts)


def _resolve(base: str, path: str) -> str:
    """``Path.resolve``: an absolute ``path`` wins; an empty one gives ``base``."""
    if path.startswith("/"):
        return path
    return os.path.join(base, path) if path else base


def _read_all_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:  # Files.readAllBytes
            return f.read()
    except OSError as exc:
        raise IOException(str(exc)) from None


class FileTransferProtocol:
    """FileTransferProtocol.java."""

    def __init__(self, connection: Connection, local_base: str, scheduler: Scheduler) -> None:
        self.connection = connection  # :15-18
        self.local_base = _paths_get(local_base)
        self.scheduler = scheduler
        self.stack_traces: list[str] = []  # what e.printStackTrace() would print
        self.handled: list[str] = []  # (not Java) each message ``receive`` took, for tests

    def send_file(self, path: str) -> None:
        try:  # :51
            file_contents = _read_all_bytes(_resolve(self.local_base, path))  # :52
            self.connection.add_message_to_send_queue(("FTP_SEND " + path).encode())  # :53
            self.connection.add_message_to_send_queue(file_contents)  # :54
        except IOException as exc:  # :55-57
            self.stack_traces.append(str(exc))

    def send_directory(self, path: str) -> None:
        try:  # :64
            directory = _resolve(self.local_base, path)
            try:
                entries = list(os.scandir(directory))  # :65 Files.newDirectoryStream
            except OSError as exc:
                raise IOException(str(exc)) from None
            for entry in entries:
                child_path = os.path.join(directory, entry.name)
                relative = os.path.relpath(child_path, self.local_base)  # localBase.relativize
                if os.path.isdir(child_path):  # :66
                    self.send_directory(relative)  # :68
                else:
                    self.send_file(relative)  # :71
        except IOException:  # :74-75 (swallowed)
            pass

    def request_file(self, path: str) -> None:
        self.connection.add_message_to_send_queue(("FTP_REQUEST_FILE " + path).encode())  # :85

    def request_directory(self, path: str) -> None:
        self.connection.add_message_to_send_queue(("FTP_REQUEST_DIR " + path).encode())  # :96

    def start_parallel_receive(self) -> None:
        def loop() -> Blocking[None]:  # :102-112
            while True:
                yield from self.receive()

        self.scheduler.start(f"ftp-{self.connection.name}", loop())

    def receive(self) -> Blocking[None]:
        header = (yield from self.connection.get_message()).decode("utf-8", "replace")  # :118
        self.handled.append(header)
        if header.startswith("FTP_SEND "):  # :120
            file_contents = yield from self.connection.get_message()  # :121
            relative_path = _paths_get(header[header.index(" ") + 1 :])  # :122
            file_path = _resolve(self.local_base, relative_path)  # :123
            os.makedirs(os.path.dirname(file_path), exist_ok=True)  # :124 getParent().mkdirs()
            try:  # :125
                with open(file_path, "wb") as f:  # :126 Files.write
                    f.write(file_contents)
            except OSError as exc:  # :127-129
                self.stack_traces.append(str(exc))
        elif header.startswith("FTP_REQUEST_FILE "):  # :130
            relative_path = _paths_get(header[header.index(" ") + 1 :])  # :131
            if os.path.exists(_resolve(self.local_base, relative_path)):  # :132
                self.send_file(relative_path)  # :133
            else:
                self.connection.add_message_to_send_queue(b"FTP_REQUEST_FAIL: resource not found")
        elif header.startswith("FTP_REQUEST_DIR "):  # :137
            relative_path = _paths_get(header[header.index(" ") + 1 :])  # :138
            if os.path.exists(_resolve(self.local_base, relative_path)):  # :139
                self.send_directory(relative_path)  # :140
            else:
                self.connection.add_message_to_send_queue(b"FTP_REQUEST_FAIL: resource not found")
        elif header.startswith("FTP_REQUEST_FAIL"):  # :144
            return  # :145
        else:
            raise IllegalArgumentException("invalid message header " + header)  # :147
