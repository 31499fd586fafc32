"""Deterministic synthetic DICOM sample data for tests, benchmarks and the demo.

`generate(dest)` writes the main set (valid for a strict validator such as dciodvfy);
`generate_hostile(dest)` writes one extra study whose patient name holds Rich markup and a
terminal escape sequence. That name is not valid PN text, so it is kept out of the main set;
the test fixture and the demo upload it next to the main set.

Modules: ``specs`` (what the set holds, and its UIDs), ``pixels`` (the synthetic images),
``writer`` (datasets and files). Two runs give the same UIDs and the same bytes (for the same
pydicom version).

The set (look series up by key in `SERIES`):

- patient ``p1`` Müller^Zoë: study ``ct`` (CT, 7 series: ``ct1``, ``ct20``, ``ct100``,
  ``ct320``, ``ct_signed``, ``ct_rle``, ``nonsquare``) and study ``mr`` (``mr``): 2 studies,
  8 series.
- patient ``p2`` 山田^太郎: study ``xr`` (``cr_mono1`` MONOCHROME1 CR, ``sc_rgb`` RGB SC).
- patient ``p3`` Παπαδόπουλος^Νίκος: study ``misc`` (``mf24`` 24-frame grayscale word SC,
  ``sr`` Basic Text SR without pixel data).
- hostile (separate helper): patient ``evil``, study ``evil``, series ``evil``.
"""

from .pixels import MF_DOT_RADIUS, NONSQUARE_MARKER, MarkerSpec
from .specs import (
    ALL_PATIENTS,
    ALL_STUDIES,
    HOSTILE_INSTANCE_COUNT,
    HOSTILE_PATIENT,
    HOSTILE_SERIES,
    HOSTILE_STUDY,
    INSTANCE_COUNT,
    PATIENTS,
    SAMPLE_VERSION,
    SERIES,
    STUDIES,
    UID_ROOT,
    PatientSpec,
    SeriesSpec,
    StudySpec,
    sample_date,
)
from .writer import (
    CHARSET,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    generate,
    generate_hostile,
    series_dir,
)

__all__ = [
    "ALL_PATIENTS",
    "ALL_STUDIES",
    "CHARSET",
    "HOSTILE_INSTANCE_COUNT",
    "HOSTILE_PATIENT",
    "HOSTILE_SERIES",
    "HOSTILE_STUDY",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "INSTANCE_COUNT",
    "MF_DOT_RADIUS",
    "NONSQUARE_MARKER",
    "PATIENTS",
    "SAMPLE_VERSION",
    "SERIES",
    "STUDIES",
    "UID_ROOT",
    "MarkerSpec",
    "PatientSpec",
    "SeriesSpec",
    "StudySpec",
    "generate",
    "generate_hostile",
    "sample_date",
    "series_dir",
]
