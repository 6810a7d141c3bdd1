"""Quantities as short text with a readable unit (kWh, Wh or J; kg, g or mg; L or mL)."""

from __future__ import annotations

from carbonstep.accounting.footprint import J_PER_KWH


def format_energy(kwh: float) -> str:
    """``kwh`` in kWh from 1 kWh, in Wh from 1 Wh, else in joules."""
    if kwh >= 1:
        return f"{kwh:.3f} kWh"
    if kwh >= 1e-3:
        return f"{kwh * 1e3:.3f} Wh"
    return f"{kwh * J_PER_KWH:.3g} J"


def format_mass(kg: float) -> str:
    """``kg`` in kg from 1 kg, in g from 1 g, else in mg."""
    return f"{kg:.3f} kg" if kg >= 1 else f"{kg * 1e3:.3f} g" if kg >= 1e-3 else f"{kg * 1e6:.3g} mg"


def format_volume(litres: float) -> str:
    """``litres`` in L from 1 L, else in mL."""
    return f"{litres:.3f} L" if litres >= 1 else f"{litres * 1e3:.3g} mL"


__all__ = ["format_energy", "format_mass", "format_volume"]
