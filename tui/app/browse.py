"""Browse view: patients, their studies, a study's series; every row with its load state."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from tui.app.base import PacsScreen
from tui.app.widgets import MORE_KEY, Row, RowTable, cell, state_text
from tui.text import clean

PATIENT_COLUMNS = [("Patient", "name", None), ("ID", "pid", 16), ("Birth", "birth", 10),
                   ("Sex", "sex", 3), ("Studies", "n", 7)]  # fmt: skip
STUDY_COLUMNS = [("Date", "date", 10), ("Description", "desc", None), ("Mod", "mod", 7),
                 ("Accession", "acc", 10), ("Ser", "nser", 3), ("State", "state", 14)]  # fmt: skip
SERIES_COLUMNS = [("#", "num", 4), ("Mod", "mod", 4), ("Description", "desc", None),
                  ("Inst", "ninst", 5), ("State", "state", 18)]  # fmt: skip


def patient_key(patient_id: str | None) -> str:
    """Row key of a patient (a missing PatientID is a patient too)."""
    return "p:" + (patient_id or "")


def person(name: Any) -> str:
    """Readable person name ("Doe, John"), raw text if it has no components."""
    if name is None:
        return ""
    display = getattr(name, "display", None)
    return display if isinstance(display, str) and display else str(name)


def _err(exc: BaseException) -> str:
    return clean(getattr(exc, "message", None) or str(exc) or type(exc).__name__, 100)


class BrowseScreen(PacsScreen):
    """Three stacked panes: patients, studies of the highlighted patient, series of the study."""

    view_name = "browse"

    BINDINGS = [
        Binding("tab", "pane(1)", "Next pane", id="tab-pane", show=False),
        Binding("shift+tab", "pane(-1)", "Prev pane", id="shift-tab-pane", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.study_query: Any = None
        self.patients: dict[str, Any] = {}
        self.studies: dict[str, Any] = {}  # study_uid -> Study
        self.series: dict[str, Any] = {}  # series_uid -> Series (of the shown study)
        self.page_offset = 0
        self.exhausted = False
        self.page_loading = False
        self.page_error: str | None = None
        self.current_patient: str | None = None
        self.current_study: str | None = None
        self.selected_series: str | None = None
        self._deep_link_pending = False
        self.deep_study: str | None = None  # --study, or the study that --series belongs to

    def compose_body(self) -> ComposeResult:
        with Vertical(id="panes"):
            yield RowTable(PATIENT_COLUMNS, id="patients")
            yield RowTable(STUDY_COLUMNS, id="studies")
            yield RowTable(SERIES_COLUMNS, id="series")

    @property
    def tables(self) -> tuple[RowTable, RowTable, RowTable]:
        """The three panes, outermost first."""
        return (self.query_one("#patients", RowTable), self.query_one("#studies", RowTable),
                self.query_one("#series", RowTable))  # fmt: skip

    def on_mount(self) -> None:
        super().on_mount()
        patients, studies, series = self.tables
        patients.border_title = "Patients"
        studies.border_title = "Studies"
        series.border_title = "Series"
        studies.show_placeholder("select a patient")
        series.show_placeholder("select a study")
        s = self.pacs.settings
        query = None
        self.deep_study = s.study
        if s.series and not s.study:
            # A link to a series alone: ask the server which study it is in first.
            patients.show_placeholder("finding the series…")
            self.run_worker(self._find_series_study(s.series), exit_on_error=False)
            return
        if s.study or s.patient or s.series:
            from tui.dicomweb.query import StudyQuery

            self._deep_link_pending = True
            if s.study:
                query = StudyQuery(study_uid=s.study)
            elif s.patient:
                query = StudyQuery(patient_id=s.patient)
        self.new_query(query)
        self.set_focus(patients)

    async def _find_series_study(self, series_uid: str) -> None:
        from tui.dicomweb.query import StudyQuery

        try:
            found = await self.pacs.client.find_series(series_uid)
        except Exception as exc:
            self.notify(f"series lookup failed: {clean(getattr(exc, 'message', exc), 120)}",
                        severity="error", markup=False)  # fmt: skip
            found = None
        if found is None:
            self.notify(
                f"series {clean(series_uid, 64)} not found", severity="warning", markup=False
            )
            self.new_query(None)
            return
        self.deep_study = found.study_uid
        self._deep_link_pending = True
        self.new_query(StudyQuery(study_uid=found.study_uid))

    # -- patients: pages of studies grouped by patient -----------------------------------------
    def new_query(self, query: Any) -> None:
        """Start over with a new server query (None = all studies)."""
        self.study_query = query
        self.patients.clear()
        self.studies.clear()
        self.page_offset = 0
        self.exhausted = False
        self.page_loading = False
        self.current_patient = self.current_study = None
        patients, studies, series = self.tables
        patients.show_placeholder("loading…")
        patients.set_more(None)
        studies.show_placeholder("select a patient")
        series.show_placeholder("select a study")
        self.set_focus(patients)
        self.load_page()
        self.refresh_chrome()

    def load_page(self) -> None:
        """Fetch the next page (never two at once)."""
        if self.page_loading or self.exhausted:
            return
        self.page_loading = True
        self.page_error = None
        if self.patients:
            self.tables[0].set_more("loading more…")
        self.run_worker(self._load_page(self.page_offset), group="patients", exit_on_error=False)

    async def _load_page(self, offset: int) -> None:
        limit = self.pacs.page_size
        query = self.study_query
        try:
            page = await self.pacs.loader.patients(query, offset=offset, limit=limit)
        except Exception as exc:
            if query is not self.study_query:
                return
            self.page_loading = False
            self.page_error = _err(exc)
            table = self.tables[0]
            if self.patients:
                table.set_more(f"failed: {self.page_error} (r to retry)")
            else:
                table.show_placeholder(f"failed: {self.page_error} (r to retry)")
            return
        if query is not self.study_query:
            return
        self.page_loading = False
        count = sum(len(p.studies) for p in page)
        self.page_offset = offset + count
        self.exhausted = count < limit or limit == 0
        self._merge(page)
        table = self.tables[0]
        table.set_more(None if self.exhausted else "more below… (scroll to load)")
        if not self.patients:
            table.show_placeholder("no studies match" if query is not None else "no studies")
        if self._deep_link_pending:
            self._deep_link_pending = False
            self._open_deep_link()
        elif self.current_patient is None:
            self._patient_highlighted()
        self.refresh_chrome()

    def _merge(self, page: list[Any]) -> None:
        new_rows: list[Row] = []
        changed = False
        for patient in page:
            key = patient_key(patient.patient_id)
            old = self.patients.get(key)
            if old is not None:
                known = {s.study_uid for s in old.studies}
                extra = tuple(s for s in patient.studies if s.study_uid not in known)
                patient = dataclasses.replace(old, studies=old.studies + extra)
                changed = True
            self.patients[key] = patient
            for study in patient.studies:
                self.studies[study.study_uid] = study
            if old is None:
                new_rows.append(self._patient_row(key, patient))
        table = self.tables[0]
        if changed:
            table.set_rows([self._patient_row(k, p) for k, p in self.patients.items()])
            if self.current_patient in self.patients:
                self._show_studies(self.current_patient)
        else:
            table.append_rows(new_rows)

    def _patient_row(self, key: str, p: Any) -> Row:
        name = person(p.name)
        birth = p.birth_date.isoformat() if p.birth_date else ""
        cells = [cell(name, 60, "bold"), cell(p.patient_id, 40), cell(birth), cell(p.sex, 3),
                 cell(len(p.studies))]  # fmt: skip
        return Row(key, cells, f"{name} {p.patient_id or ''} {birth}", p)

    # -- studies -------------------------------------------------------------------------------
    def _show_studies(self, key: str) -> None:
        patient = self.patients.get(key)
        table = self.tables[1]
        if patient is None:
            table.show_placeholder("select a patient")
            return
        rows = [self._study_row(s) for s in patient.studies]
        table.set_rows(rows, empty="no studies")

    def _study_row(self, s: Any) -> Row:
        date = s.study_date.isoformat() if s.study_date else ""
        mods = "/".join(s.modalities)
        state = self.pacs.loader.state(("study", s.study_uid))
        cells = [cell(date), cell(s.description, 60), cell(mods, 20), cell(s.accession, 20),
                 cell("" if s.num_series is None else s.num_series),
                 state_text(state, self.pacs.clock())]  # fmt: skip
        return Row(
            s.study_uid, cells, f"{date} {s.description or ''} {mods} {s.accession or ''}", s
        )

    def _load_series_list(self, study_uid: str) -> None:
        table = self.tables[2]
        self.series.clear()
        table.show_placeholder("loading…")
        self.run_worker(
            self._series_list(study_uid), group="series-list", exclusive=True, exit_on_error=False
        )

    async def _series_list(self, study_uid: str) -> None:
        try:
            # The study whose series are listed is the open one: the prefetch policy
            # ("study") works on it, and nothing is prefetched under the default "none".
            series = await self.pacs.loader.open_study(study_uid)
        except Exception as exc:
            if study_uid == self.current_study:
                self.tables[2].show_placeholder(f"failed: {_err(exc)} (r to retry)")
            return
        if study_uid != self.current_study:
            return
        ordered = sorted(series, key=lambda s: (s.number is None, s.number or 0))
        self.series = {s.series_uid: s for s in ordered}
        self.tables[2].set_rows([self._series_row(s) for s in ordered], empty="no series")
        if self.selected_series and self.selected_series in self.series:
            self.tables[2].select_key(self.selected_series)
        self._after_series_list()

    def _after_series_list(self) -> None:
        target = getattr(self, "_deep_series", None)
        if target is None:
            return
        self._deep_series = None
        table = self.tables[2]
        if target and table.select_key(target):
            self.set_focus(table)
            self._select_series(immediate=True)
        elif target:
            self.notify(
                f"series {clean(target, 64)} is not in this study", severity="warning", markup=False
            )

    # -- series --------------------------------------------------------------------------------
    def series_label(self, study_uid: str, series_uid: str) -> Text:
        """Row state of a series: its metadata, then its preview when that failed or has none."""
        loader = self.pacs.loader
        meta = loader.state(("series", study_uid, series_uid))
        prev = loader.state(("preview", study_uid, series_uid))
        now = self.pacs.clock()
        meta_name = str(getattr(meta.state, "value", meta.state))
        prev_name = str(getattr(prev.state, "value", prev.state))
        if meta_name == "loaded" and prev_name in ("failed", "no-image", "loading", "queued"):
            if prev_name in ("loading", "queued"):
                text = state_text(meta, now)
                text.append(" · img…", style="dim")
                return text
            return state_text(prev, now)
        return state_text(meta, now)

    def _series_row(self, s: Any) -> Row:
        cells = [cell("" if s.number is None else s.number), cell(s.modality, 6),
                 cell(s.description, 60),
                 cell("" if s.num_instances is None else s.num_instances),
                 self.series_label(s.study_uid, s.series_uid)]  # fmt: skip
        hay = f"{s.number} {s.modality or ''} {s.description or ''}"
        return Row(s.series_uid, cells, hay, s)

    def _select_series(self, immediate: bool = False) -> None:
        table = self.tables[2]
        row = table.current_row()
        if row is None or self.current_study is None:
            return
        self.selected_series = row.key
        self.pacs.loader.select_series(self.current_study, row.key, immediate=immediate)
        self.refresh_chrome()

    # -- highlight / focus ---------------------------------------------------------------------
    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if table.id == "patients":
            self._patient_highlighted()
            key = event.row_key.value if event.row_key else None
            near_end = key == MORE_KEY or event.cursor_row >= table.row_count - 2
            if near_end and not self.exhausted and not self.page_error:
                self.load_page()
        elif table.id == "studies":
            self._study_highlighted()
        elif table.id == "series" and self.focused is table:
            self._select_series()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _patient_highlighted(self) -> None:
        key = self.tables[0].current_key()
        if key == self.current_patient:
            return
        self.current_patient = key
        self.current_study = None
        if key is None:
            return
        self._show_studies(key)
        self._study_highlighted()
        self.refresh_chrome()

    def _study_highlighted(self) -> None:
        key = self.tables[1].current_key()
        if key == self.current_study:
            return
        self.current_study = key
        self.selected_series = None
        if key is None:
            self.tables[2].show_placeholder("select a study")
        else:
            self._load_series_list(key)
        self.refresh_chrome()

    def on_descendant_focus(self, event: Any) -> None:
        series = self.tables[2]
        if event.widget is series and series.current_key() != self.selected_series:
            self._select_series()

    def _focused_index(self) -> int:
        for i, table in enumerate(self.tables):
            if self.focused is table:
                return i
        return 0

    def action_pane(self, step: int) -> None:
        index = max(0, min(2, self._focused_index() + step))
        table = self.tables[index]
        if step < 0 and index < 2 and self._focused_index() == 2:
            self.pacs.loader.clear_selection()
            self.selected_series = None
        self.set_focus(table)
        self.refresh_chrome()

    def action_open(self) -> None:
        index = self._focused_index()
        if index < 2:
            self.action_pane(1)
            return
        row = self.tables[2].current_row()
        if row is None or self.current_study is None:
            return
        self._select_series(immediate=True)
        from tui.app.series import SeriesScreen

        study = self.studies.get(self.current_study)
        patient = self.patients.get(self.current_patient or "")
        self.app.push_screen(SeriesScreen(study, row.data, patient))

    def action_back(self) -> None:
        if self.filter_text:
            super().action_back()
            return
        if self._focused_index() > 0:
            self.action_pane(-1)

    def action_retry(self) -> None:
        index = self._focused_index()
        if index == 0 or (self.page_error and not self.patients):
            if self.page_error:
                self.load_page()
            elif not self.patients:
                self.new_query(self.study_query)
            return
        if index == 1 or (index == 2 and not self.series):
            if self.current_study:
                self.pacs.loader.retry(("study", self.current_study))
                self.current_study = None
                self._study_highlighted()
            return
        row = self.tables[2].current_row()
        if row is not None and self.current_study:
            for kind in ("series", "preview"):
                key = (kind, self.current_study, row.key)
                name = str(getattr(self.pacs.loader.state(key).state, "value", ""))
                if name in ("failed", "cancelled"):
                    self.pacs.loader.retry(key)
                    return
            self._select_series(immediate=True)

    # -- deep links ----------------------------------------------------------------------------
    def _open_deep_link(self) -> None:
        s = self.pacs.settings
        patients, studies, _ = self.tables
        if self.deep_study:
            study = self.studies.get(self.deep_study)
            if study is None:
                self.notify(
                    f"study {clean(self.deep_study, 64)} not found",
                    severity="warning",
                    markup=False,
                )
                self._patient_highlighted()
                return
            patients.select_key(patient_key(study.patient_id))
            self._patient_highlighted()
            studies.select_key(self.deep_study)
            self._deep_series = s.series or ""
            self._study_highlighted()
            if not s.series:
                # Listed, none selected: focus stays on the study until the user moves in.
                self._deep_series = None
                self.set_focus(studies)
            return
        self._patient_highlighted()
        if s.patient:
            self.set_focus(studies)

    # -- filter, loader events, ticks ----------------------------------------------------------
    def apply_filter(self, text: str) -> None:
        table = next((t for t in self.tables if self.focused is t), None) or self._last_table()
        table.set_filter(text)

    def _last_table(self) -> RowTable:
        focused = getattr(self, "_focus_before", None)
        return focused if isinstance(focused, RowTable) else self.tables[0]

    def node_changed(self, key: tuple[str, ...], state: Any) -> None:
        if not self.is_mounted:
            return
        kind = key[0] if key else ""
        if kind == "study" and len(key) == 2 and key[1] in self.tables[1].rows:
            self.tables[1].set_cell(key[1], "state", state_text(state, self.pacs.clock()))
        elif kind in ("series", "preview") and len(key) == 3 and key[1] == self.current_study:
            self.tables[2].set_cell(key[2], "state", self.series_label(key[1], key[2]))

    def tick(self) -> None:
        now = self.pacs.clock()
        loader = self.pacs.loader
        studies, series = self.tables[1], self.tables[2]
        for row in studies.items:
            st = loader.state(("study", row.key))
            if st.busy:
                studies.set_cell(row.key, "state", state_text(st, now))
        if self.current_study:
            for row in series.items:
                series.set_cell(row.key, "state", self.series_label(self.current_study, row.key))

    def crumbs(self) -> list[str]:
        parts = ["browse"]
        if self.study_query is not None:
            parts[0] = "search"
        patient = self.patients.get(self.current_patient or "")
        if patient is not None:
            parts.append(person(patient.name) or patient.patient_id or "(no name)")
        study = self.studies.get(self.current_study or "")
        if study is not None:
            date = study.study_date.isoformat() if study.study_date else ""
            parts.append(" ".join(p for p in (date, study.description or "") if p) or "study")
        series = self.series.get(self.selected_series or "")
        if series is not None:
            parts.append(
                f"#{series.number if series.number is not None else '?'} "
                f"{series.modality or ''} {series.description or ''}".strip()
            )
        return parts
