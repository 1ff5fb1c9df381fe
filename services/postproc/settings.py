"""Post-processor configuration (see the README's configuration table)."""

from typing import Self

from pydantic import Field, field_validator, model_validator

from rnr.core.settings import CommonSettings, HydrofabricSettings, OutputSettings


class PostprocSettings(CommonSettings, HydrofabricSettings, OutputSettings):
    # Where the table, the checkpoint and quarantined files go, in OUTPUT_BUCKET.
    postproc_prefix: str = Field("postprocess", min_length=1)
    # A backlog (a long outage, a first run on a full bucket) is taken in over several
    # runs rather than risking the Lambda's 15-minute limit in one.
    postproc_max_objects_per_run: int = Field(500, ge=1, le=100_000)
    postproc_concurrency: int = Field(8, ge=1, le=64)
    # A forecast older than this (by reference time) leaves the table.
    postproc_max_forecast_age_hours: float = Field(48.0, gt=0)

    @field_validator("postproc_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        stripped = value.strip("/")
        if not stripped:
            raise ValueError("must name a key prefix, e.g. 'postprocess'")
        return stripped

    @model_validator(mode="after")
    def _prefixes_apart(self) -> Self:
        # Quarantined copies are .nc files: under the output prefix they would be
        # listed as new outputs on the next run.
        outputs = f"{self.output_prefix}/" if self.output_prefix else ""
        tables = f"{self.postproc_prefix}/"
        if outputs.startswith(tables) or tables.startswith(outputs):
            raise ValueError(
                f"POSTPROC_PREFIX {self.postproc_prefix!r} and OUTPUT_PREFIX "
                f"{self.output_prefix!r} must not contain one another"
            )
        return self
