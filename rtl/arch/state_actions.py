"""The state-action table: what VM entries and VM exits do to each machine-state element.

# Ref: Intel SDM vol. 3C, 26.3.2 "Loading guest state" (entry load), 27.3
# "Saving guest state" (exit store), 27.5 "Loading host state" (exit load),
# 24.7.1 / 24.8.1 (the VM-exit and VM-entry controls that select state).

One row per element of rtl/arch/state.py (and the VMX-preemption timer, which
the unit keeps but software reaches only through the VMCS). For each of the
three transitions a row gives an ``Action``: its *indicator* (whether the
action happens: always, never, or as a VMCS control bit says, with what
happens instead when the bit is 0) and its *source* (where a loaded value
comes from: a VMCS field, a constant, or a computed ``Rule``; where a stored
value comes from: the element, or a rule). Every load stores the value with the
element's forced bits applied (``Element.force1`` / ``force0``: DR7 bit 10 is 1,
bits 15:14, 12 and 11 are 0; RFLAGS bit 1 is 1).

The reference model interprets this table (sim/model/transitions.py) and the
RTL's transition sequencer walks it (rtl/vmx); docs/state-actions.md is
generated from it (``python -m vmxu.rtl.arch.state_actions``), so adding an
element is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.lib import enum

from .controls import ENTRY, EXIT, PIN, ControlField
from .fields import FIELD_BY_NAME
from .state import ELEMENT_BY_NAME, SEGMENTS

__all__ = [
    "Indicator",
    "Source",
    "Rule",
    "Control",
    "Action",
    "StateAction",
    "TIMER",
    "STATE_ACTIONS",
    "STATE_ACTION_BY_ELEMENT",
    "ENTRY_WALK",
    "CR0_KEPT_BITS",
    "HOST_SEGMENT_LIMIT",
    "HOST_TR_LIMIT",
    "HOST_TABLE_LIMIT",
    "UNUSABLE_AR",
    "HOST_CS_AR",
    "HOST_DATA_AR",
    "markdown",
]

#: The pseudo-element of the VMX-preemption timer: kept by the unit, not reachable by GET/SET.
TIMER = "preemption_timer"

#: CR0 bits a VM entry or exit never modifies: ET (4), reserved 15:6, 17, 28:19, NW (29), CD (30), 63:32
#: (26.3.2.1, 27.5.1). The others (PE, MP, EM, TS, NE, WP, AM, PG) come from the VMCS.
CR0_KEPT_BITS = 0xFFFF_FFFF_7FFA_FFD0
#: Host segment limits after a VM exit (27.5.2).
HOST_SEGMENT_LIMIT = 0xFFFF_FFFF
HOST_TR_LIMIT = 0x67
HOST_TABLE_LIMIT = 0xFFFF
#: Access rights of an unusable segment: bit 16 only.
UNUSABLE_AR = 1 << 16
#: Host CS access rights without L and D/B: type 11, S, P, G (27.5.2).
HOST_CS_AR = 0x809B
#: Host SS, DS, ES, FS, GS access rights: type 3, S, P, D/B, G.
HOST_DATA_AR = 0xC093


class Indicator(enum.Enum):
    """Whether an action happens."""

    PREDETERMINED = "predetermined"
    CONTROL = "control bit"
    NEVER = "never"


class Source(enum.Enum):
    """Where a loaded or stored value comes from."""

    FIELD = "VMCS field"
    CONSTANT = "constant"
    COMPUTED = "computed"
    ELEMENT = "element"


class Rule(enum.Enum):
    """A computed value; its text is what docs/state-actions.md says of it."""

    CR0_FROM_FIELD = "the field's PE, MP, EM, TS, NE, WP, AM, PG; the other bits keep their value (CR0_KEPT_BITS)"
    CR4_HOST = 'the field, with PAE = 1 when "host address-space size" is 1'
    EFER_FROM_IA32E_MODE_GUEST = 'LMA and LME := "IA-32e mode guest"; the other bits keep their value'
    EFER_FROM_HOST_ADDRESS_SPACE_SIZE = 'LMA and LME := "host address-space size"; the other bits keep their value'
    RFLAGS_SAVED = (
        "the element, with RF (bit 16) 0 when an instruction caused the exit and 1 when a fault-class exception did"
    )
    INTERRUPTIBILITY_SAVED = (
        "the element, with blocking by SMI (bit 2) 0 when the exit ends outside SMM, 1 when it ends in SMM"
    )
    PENDING_DEBUG_SAVED = "the element when the exit happens under blocking by MOV SS, else 0"
    AR_SAVED = "the element, with bits 31:17 and 11:8 0"
    ACTIVITY_ENTRY = "the field, or active (0) when the entry injects an event"
    INTERRUPTIBILITY_ENTRY = "the field, with blocking by STI and MOV SS (bits 1:0) 0 when the entry injects an event"
    INTERRUPTIBILITY_HOST = (
        "blocking by NMI (bit 3) when an NMI caused the exit, by SMI (bit 2) when the exit ends in SMM, else 0"
    )
    CS_AR_HOST = 'type 11, S, P, G; L := "host address-space size", D/B := its complement'
    DATA_AR_HOST = "type 3, S, P, D/B, G (0xC093); unusable (bit 16 only) when the host selector is 0"
    TIMER_SAVED = "the timer's value, 0 if it expired"


@dataclass(frozen=True)
class Control:
    """A control bit: ``field`` (a ControlField) bit ``name``."""

    field: ControlField
    name: str

    @property
    def label(self) -> str:
        kind = {ENTRY.vmcs_field: "entry", EXIT.vmcs_field: "exit", PIN.vmcs_field: "pin-based"}[self.field.vmcs_field]
        return f"{kind} control {self.name}"


@dataclass(frozen=True)
class Action:
    """One transition's action on one element.

    ``field`` is the VMCS field a load reads or a store writes; ``constant`` the
    value of a CONSTANT load; ``rule`` the computation of a COMPUTED value;
    ``control`` the bit of a CONTROL indicator and ``otherwise`` the action
    when that bit is 0 (None: the element is left as it is).
    """

    indicator: Indicator
    source: Source | None = None
    field: str | None = None
    constant: int | None = None
    rule: Rule | None = None
    control: Control | None = None
    otherwise: Action | None = None

    def __post_init__(self) -> None:
        if self.indicator == Indicator.NEVER:
            if self.source is not None:
                raise ValueError("an action that never happens has no source")
            return
        if self.source is None:
            raise ValueError("an action needs a source")
        if (self.indicator == Indicator.CONTROL) != (self.control is not None):
            raise ValueError("a control bit goes with the CONTROL indicator, and only with it")
        if self.otherwise is not None and self.indicator != Indicator.CONTROL:
            raise ValueError("only a CONTROL action has an 'otherwise'")
        if (self.source == Source.CONSTANT) != (self.constant is not None):
            raise ValueError("a constant goes with the CONSTANT source, and only with it")
        if (self.source == Source.COMPUTED) != (self.rule is not None):
            raise ValueError("a rule goes with the COMPUTED source, and only with it")
        if self.source == Source.FIELD and self.field is None:
            raise ValueError("a FIELD source names its field")
        if self.field is not None and self.field not in FIELD_BY_NAME:
            raise ValueError(f"no VMCS field {self.field}")


@dataclass(frozen=True)
class StateAction:
    element: str
    entry_load: Action
    exit_store: Action
    exit_load: Action


_NEVER = Action(Indicator.NEVER)


def _load(field: str) -> Action:
    return Action(Indicator.PREDETERMINED, Source.FIELD, field=field)


def _store(field: str, rule: Rule | None = None) -> Action:
    if rule is None:
        return Action(Indicator.PREDETERMINED, Source.ELEMENT, field=field)
    return Action(Indicator.PREDETERMINED, Source.COMPUTED, field=field, rule=rule)


def _constant(value: int) -> Action:
    return Action(Indicator.PREDETERMINED, Source.CONSTANT, constant=value)


def _computed(rule: Rule, field: str | None = None) -> Action:
    return Action(Indicator.PREDETERMINED, Source.COMPUTED, field=field, rule=rule)


def _if(control: ControlField, name: str, action: Action, otherwise: Action | None = None) -> Action:
    return Action(
        Indicator.CONTROL,
        action.source,
        field=action.field,
        constant=action.constant,
        rule=action.rule,
        control=Control(control, name),
        otherwise=otherwise,
    )


def _plain(element: str, guest: str, host: Action) -> StateAction:
    return StateAction(element, _load(guest), _store(guest), host)


def _segment_rows(segment: str) -> list[StateAction]:
    up = segment.upper()
    with_host_base = segment in ("fs", "gs", "tr")
    if segment == "ldtr":
        selector, base, limit, ar = _constant(0), _constant(0), _constant(0), _constant(UNUSABLE_AR)
    else:
        selector = _load(f"HOST_{up}_SELECTOR")
        base = _load(f"HOST_{up}_BASE") if with_host_base else _constant(0)
        if segment == "tr":
            limit, ar = _constant(HOST_TR_LIMIT), _constant(0x8B)
        else:
            limit = _constant(HOST_SEGMENT_LIMIT)
            ar = _computed(Rule.CS_AR_HOST if segment == "cs" else Rule.DATA_AR_HOST)
    guest = f"GUEST_{up}_"
    return [
        _plain(f"{segment}.selector", guest + "SELECTOR", selector),
        _plain(f"{segment}.base", guest + "BASE", base),
        _plain(f"{segment}.limit", guest + "LIMIT", limit),
        StateAction(f"{segment}.ar", _load(guest + "AR_BYTES"), _store(guest + "AR_BYTES", Rule.AR_SAVED), ar),
    ]


STATE_ACTIONS: tuple[StateAction, ...] = (
    StateAction(
        "cr0",
        _computed(Rule.CR0_FROM_FIELD, "GUEST_CR0"),
        _store("GUEST_CR0"),
        _computed(Rule.CR0_FROM_FIELD, "HOST_CR0"),
    ),
    _plain("cr3", "GUEST_CR3", _load("HOST_CR3")),
    _plain("cr4", "GUEST_CR4", _computed(Rule.CR4_HOST, "HOST_CR4")),
    StateAction(
        "dr7",
        _if(ENTRY, "LOAD_DEBUG_CONTROLS", _load("GUEST_DR7")),
        _if(EXIT, "SAVE_DEBUG_CONTROLS", _store("GUEST_DR7")),
        _constant(0x400),
    ),
    _plain("rsp", "GUEST_RSP", _load("HOST_RSP")),
    _plain("rip", "GUEST_RIP", _load("HOST_RIP")),
    StateAction("rflags", _load("GUEST_RFLAGS"), _store("GUEST_RFLAGS", Rule.RFLAGS_SAVED), _constant(0x2)),
    StateAction(
        "efer",
        _if(ENTRY, "LOAD_IA32_EFER", _load("GUEST_IA32_EFER"), _computed(Rule.EFER_FROM_IA32E_MODE_GUEST)),
        _if(EXIT, "SAVE_IA32_EFER", _store("GUEST_IA32_EFER")),
        _if(EXIT, "LOAD_IA32_EFER", _load("HOST_IA32_EFER"), _computed(Rule.EFER_FROM_HOST_ADDRESS_SPACE_SIZE)),
    ),
    StateAction(
        "pat",
        _if(ENTRY, "LOAD_IA32_PAT", _load("GUEST_IA32_PAT")),
        _if(EXIT, "SAVE_IA32_PAT", _store("GUEST_IA32_PAT")),
        _if(EXIT, "LOAD_IA32_PAT", _load("HOST_IA32_PAT")),
    ),
    StateAction(
        "debugctl",
        _if(ENTRY, "LOAD_DEBUG_CONTROLS", _load("GUEST_IA32_DEBUGCTL")),
        _if(EXIT, "SAVE_DEBUG_CONTROLS", _store("GUEST_IA32_DEBUGCTL")),
        _constant(0),
    ),
    StateAction(
        "perf_global_ctrl",
        _if(ENTRY, "LOAD_IA32_PERF_GLOBAL_CTRL", _load("GUEST_IA32_PERF_GLOBAL_CTRL")),
        _NEVER,
        _if(EXIT, "LOAD_IA32_PERF_GLOBAL_CTRL", _load("HOST_IA32_PERF_GLOBAL_CTRL")),
    ),
    _plain("sysenter_cs", "GUEST_SYSENTER_CS", _load("HOST_IA32_SYSENTER_CS")),
    _plain("sysenter_esp", "GUEST_SYSENTER_ESP", _load("HOST_IA32_SYSENTER_ESP")),
    _plain("sysenter_eip", "GUEST_SYSENTER_EIP", _load("HOST_IA32_SYSENTER_EIP")),
    # SMBASE moves only on SMM VM exits and on VM entries that return from SMM (34.15).
    StateAction("smbase", _NEVER, _NEVER, _NEVER),
    StateAction(
        "activity",
        _computed(Rule.ACTIVITY_ENTRY, "GUEST_ACTIVITY_STATE"),
        _store("GUEST_ACTIVITY_STATE"),
        _constant(0),
    ),
    StateAction(
        "interruptibility",
        _computed(Rule.INTERRUPTIBILITY_ENTRY, "GUEST_INTERRUPTIBILITY_INFO"),
        _store("GUEST_INTERRUPTIBILITY_INFO", Rule.INTERRUPTIBILITY_SAVED),
        _computed(Rule.INTERRUPTIBILITY_HOST),
    ),
    StateAction(
        "pending_debug",
        _load("GUEST_PENDING_DBG_EXCEPTIONS"),
        _store("GUEST_PENDING_DBG_EXCEPTIONS", Rule.PENDING_DEBUG_SAVED),
        _constant(0),
    ),
    *(row for segment in SEGMENTS for row in _segment_rows(segment)),
    _plain("gdtr.base", "GUEST_GDTR_BASE", _load("HOST_GDTR_BASE")),
    _plain("gdtr.limit", "GUEST_GDTR_LIMIT", _constant(HOST_TABLE_LIMIT)),
    _plain("idtr.base", "GUEST_IDTR_BASE", _load("HOST_IDTR_BASE")),
    _plain("idtr.limit", "GUEST_IDTR_LIMIT", _constant(HOST_TABLE_LIMIT)),
    # SMM: entered by SMI delivery and left by RSM or a VM entry that returns from SMM (34.15), not by
    # ordinary VM entries and exits.
    StateAction("smm", _NEVER, _NEVER, _NEVER),
    StateAction(
        TIMER,
        _if(PIN, "ACTIVATE_PREEMPTION_TIMER", _load("VMX_PREEMPTION_TIMER_VALUE")),
        _if(EXIT, "SAVE_VMX_PREEMPTION_TIMER", _store("VMX_PREEMPTION_TIMER_VALUE", Rule.TIMER_SAVED)),
        _NEVER,
    ),
)

STATE_ACTION_BY_ELEMENT: dict[str, StateAction] = {row.element: row for row in STATE_ACTIONS}


def _entry_fields() -> tuple[str, ...]:
    fields = []
    for row in STATE_ACTIONS:
        action = row.entry_load
        if action.indicator != Indicator.NEVER and action.field is not None:
            fields.append(action.field)
    return tuple(fields)


#: The guest fields a VM entry reads, in the order it reads them: every field an entry-load action names,
#: in table order, then the VMCS link pointer (checked, never loaded). The RTL's entry walk reads them in
#: this order and checks each in the read that loads it (rtl/vmx/guest_checks.py).
ENTRY_WALK: tuple[str, ...] = (*_entry_fields(), "VMCS_LINK_POINTER")


def _check() -> None:
    elements = [row.element for row in STATE_ACTIONS if row.element != TIMER]
    if elements != list(ELEMENT_BY_NAME):
        missing = set(ELEMENT_BY_NAME) - set(elements)
        raise ValueError(f"the state-action table must list every element once, in state.py's order; missing {missing}")
    for row in STATE_ACTIONS:
        for action in (row.entry_load, row.exit_store, row.exit_load):
            for bit in (action.control,) if action.control else ():
                if bit.name not in bit.field.bits:
                    raise ValueError(f"{row.element}: no control {bit.name} in {bit.field.name}")
            if action.control and not bit.field.allowed1 & bit.field.bit(bit.name):
                raise ValueError(f"{row.element}: control {bit.name} is not allowed-1, so the row could never act")


_check()


# -- docs/state-actions.md ------------------------------------------------------------


def _describe(action: Action, *, store: bool) -> str:
    if action.indicator == Indicator.NEVER:
        return "—"
    if action.source == Source.FIELD:
        what = f"`{action.field}`"
    elif action.source == Source.CONSTANT:
        what = f"`{action.constant:#x}`"
    elif action.source == Source.ELEMENT:
        what = f"→ `{action.field}`"
    else:
        assert action.rule is not None
        target = f"→ `{action.field}`: " if store else (f"`{action.field}`: " if action.field else "")
        what = f"{target}{action.rule.value}"
    if action.indicator == Indicator.CONTROL:
        assert action.control is not None
        instead = "left as it is" if action.otherwise is None else _describe(action.otherwise, store=store)
        return f"if {action.control.label}: {what}; else {instead}"
    return what


def markdown() -> str:
    """docs/state-actions.md: the table, for a reader to check against the SDM."""
    lines = [
        "# State actions of VM entries and VM exits",
        "",
        "Generated from `rtl/arch/state_actions.py` by `python -m vmxu.rtl.arch.state_actions`;",
        "do not edit (a test fails when this page is stale).",
        "",
        "For each machine-state element, what a VM entry loads (SDM 26.3.2), what a",
        "VM exit saves in the guest-state area (27.3) and what it loads from the",
        "host-state area (27.5). An action happens always (no condition), never",
        "(—), or as a control bit says. A load stores the value with the element's",
        "forced bits applied (DR7 bit 10 = 1 and bits 15:14, 12, 11 = 0; RFLAGS bit 1 = 1).",
        "",
        "| element | VM entry: load | VM exit: store | VM exit: load |",
        "|---|---|---|---|",
    ]
    for row in STATE_ACTIONS:
        cells = (
            _describe(row.entry_load, store=False),
            _describe(row.exit_store, store=True),
            _describe(row.exit_load, store=False),
        )
        lines.append(f"| `{row.element}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"`{TIMER}` is the VMX-preemption timer: the unit keeps it while a guest runs;",
        "GET and SET do not reach it.",
        "",
        "Constants: CR0 bits kept by both loads `CR0_KEPT_BITS` = "
        f"`{CR0_KEPT_BITS:#x}`; host segment limit `{HOST_SEGMENT_LIMIT:#x}`, TR limit "
        f"`{HOST_TR_LIMIT:#x}`, GDTR/IDTR limit `{HOST_TABLE_LIMIT:#x}`; an unusable segment's "
        f"access rights `{UNUSABLE_AR:#x}`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
