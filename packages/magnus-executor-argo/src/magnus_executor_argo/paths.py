"""The files a workflow's pods read, as the image holds them.

A pod runs in the image, not on this machine: the pipeline, configuration and parameters files
named in its command must be inside the image. The image holds the project folder (the folder
``magnus execute`` renders from) as its working directory, so a file is named in the manifest by
its path relative to the project folder; a path outside it cannot be there and is refused.
"""

from __future__ import annotations

import os

from magnus.errors import ConfigurationError
from magnus.names import relative_inside


def path_in_image(path: str, given_as: str) -> str:
    """``path`` relative to the project folder, as the pods read it from their working directory.

    ``given_as`` names where the path came from (``-c``, ``-f``, ``-p``, a config field), for the
    error. An absolute path inside the project folder is mapped to its relative form.

    Raises:
        ConfigurationError: the path is outside the project folder, so the image cannot hold it there,
            or it holds a template tag's marks, which Argo would fill in the pods' command lines.
    """
    if not path:
        return path
    from magnus_executor_argo.template_tags import tag_marks_problem  # at render only: pods need not import it

    problem = tag_marks_problem(path)
    if problem:
        raise ConfigurationError(f"{given_as} {path!r}: {problem}")
    project = os.getcwd()
    relative = relative_inside(path, project)
    if relative is None:
        raise ConfigurationError(
            f"{given_as} '{path}' is outside the project folder ({project}): the pods read it from the image, "
            "which must hold the project folder as its working directory; give a file inside the project folder"
        )
    return relative
