"""Run ids people can say out loud: ``<adjective>-<name>-<HHMM>``, the shape magnus 0.5.1 used."""

from __future__ import annotations

import random
from datetime import datetime

_ADJECTIVES = (
    "agile amber ancient bold brave bright calm candid clever cosmic crisp curious daring deft eager "
    "early fair fearless fleet gentle glad golden grand hardy humble jolly keen kind lively lucid "
    "lucky mellow merry mighty nimble noble patient plucky polite proud quick quiet rapid ready "
    "serene sharp shiny silent sleek smooth snappy spry steady sturdy sunny swift tidy vivid witty zesty"
).split()

_NAMES = (
    "agnesi babbage bohr boole borg cannon carson curie darwin dijkstra einstein euler faraday fermi "
    "feynman franklin galileo gauss goodall hamilton hawking hopper hypatia joliot kepler knuth "
    "lamarr lovelace maxwell meitner mendel mirzakhani morse newton noether pascal pasteur perlman "
    "planck poincare ramanujan ritchie sagan shannon sinoussi thompson tesla torvalds turing volta "
    "wiles wozniak wright yalow"
).split()


def generate_run_id() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NAMES)}-{datetime.now():%H%M}"
