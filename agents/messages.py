"""The agents' message shapes (DESIGN.md §6), kept from the original design's Portuguese keys.

Strategist: agente, turno, proposta, plano_curto, metricas_esperadas, proximo_passo.
Critic:     agente, turno, veredito, analise, ajuste_proposto.
Maestro:    agente, turno, acao, detalhes, metricas_pos_patch, status.

Whatever a provider returns is validated into these models before anything uses it:
an LLM's output is data, never code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from engine.strategies import registered

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


class Proposal(BaseModel):
    """One variation: a method and the parameter values that differ from the segment's base."""

    model_config = _CONFIG

    nome: str = Field(min_length=1, max_length=40)
    metodo: str = Field(json_schema_extra=lambda schema: schema.update(enum=list(registered())))  # tool schemas name them
    parametros: dict[str, float | int | bool | str] = Field(default_factory=dict)
    racional: str = Field("", max_length=600)

    @field_validator("metodo")
    @classmethod
    def _registered(cls, name: str) -> str:
        """Only a registered strategy may be proposed: agents choose among them, never write one."""
        if name not in registered():
            raise ValueError(f"no strategy named {name!r}; registered: {', '.join(registered())}")
        return name


class StrategistMessage(BaseModel):
    model_config = _CONFIG

    agente: Literal["strategist"] = "strategist"
    turno: int = Field(ge=0)
    proposta: list[Proposal] = Field(min_length=1, max_length=3)
    plano_curto: str = Field("", max_length=600)
    metricas_esperadas: dict[str, float] = Field(default_factory=dict)
    proximo_passo: str = Field("", max_length=300)


class CriticMessage(BaseModel):
    model_config = _CONFIG

    agente: Literal["critic"] = "critic"
    turno: int = Field(ge=0)
    veredito: str = Field(min_length=1, max_length=200)
    analise: str = Field("", max_length=1200)
    ajuste_proposto: list[dict[str, JsonValue]] | dict[str, JsonValue] | None = None


class MaestroMessage(BaseModel):
    model_config = _CONFIG

    agente: Literal["maestro"] = "maestro"
    turno: int = Field(ge=0)
    acao: str = Field(min_length=1, max_length=200)
    detalhes: dict[str, JsonValue] | str = ""
    metricas_pos_patch: dict[str, JsonValue] = Field(default_factory=dict)
    status: str = ""


def one_line(message: BaseModel) -> str:
    """The conversation pane's rendering of a message: who, then the gist."""
    d: dict[str, Any] = message.model_dump()
    agent = d["agente"]
    if agent == "strategist":
        names = ", ".join(f"{p['nome']} {p['metodo']} {_kv(p['parametros'])}".strip() for p in d["proposta"])
        return f"proposes {names}" + (f" — {d['plano_curto']}" if d["plano_curto"] else "")
    if agent == "critic":
        return f"{d['veredito']}" + (f" — {d['analise']}" if d["analise"] else "")
    details = d["detalhes"] if isinstance(d["detalhes"], str) else _kv(d["detalhes"])
    return f"{d['acao']}: {details}" + (f" [{d['status']}]" if d["status"] else "")


def _kv(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


FIELD_LABELS = {
    "agente": "agent", "turno": "turn", "proposta": "proposals", "nome": "name", "metodo": "method",
    "parametros": "parameters", "racional": "rationale", "plano_curto": "short plan",
    "metricas_esperadas": "expected metrics", "proximo_passo": "next step", "veredito": "verdict",
    "analise": "analysis", "ajuste_proposto": "proposed adjustment", "acao": "action", "detalhes": "details",
    "metricas_pos_patch": "metrics after the change", "status": "status",
}
"""The message keys (kept in Portuguese in the files, §6) in the console's words."""
