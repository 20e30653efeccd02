"""The greenhouse sensor partition: the reference partition for emulated boards.

Two zones, each with a seeded synthetic temperature sensor (ADC counts) and humidity sensor:

- zone 1 temperature: counts -> degrees (scale/offset) -> mean of the last 4 (count window) ->
  ``hot`` when that mean is above 28 degrees (threshold);
- zone 2 temperature: counts -> degrees -> 2 s mean every 1 s (time window);
- zone 1 humidity: a random walk, passed on when it moved by 2 % (deadband);
- zone 2 humidity: a triangle, at most one value per 2 s to the host (rate limiter);
- the fan setpoint: written by the host (``desired``), applied by the board's actuator after
  200 ms (``reported``), and in effect (``effective``): a write binding.

The averages, ``hot``, both humidities and the fan's reported and effective routes go to the
host; the fan's desired route comes from it. It fits the board capacities
(``manyfold_core::device::board``): 14 routes, 8 operators, 4 sources, 2 windows.

>>> image = greenhouse_spec().encode()
>>> image == greenhouse_spec().encode()
True
"""

from __future__ import annotations

from manyfold.devices.image import (
    Aggregate,
    CountWindow,
    Deadband,
    PartitionSpec,
    RateLimit,
    RouteSpec,
    Scale,
    Source,
    Threshold,
    TimeWindow,
    Waveform,
    WriteBinding,
)

Z1_TEMP_RAW = "read.raw.greenhouse.zone1.temperature.meta.v1"
Z1_TEMP = "read.logical.greenhouse.zone1.temperature.meta.v1"
Z1_TEMP_AVG = "read.logical.greenhouse.zone1.temperature_avg.meta.v1"
Z1_HOT = "read.logical.greenhouse.zone1.hot.event.v1"
Z2_TEMP_RAW = "read.raw.greenhouse.zone2.temperature.meta.v1"
Z2_TEMP = "read.logical.greenhouse.zone2.temperature.meta.v1"
Z2_TEMP_AVG = "read.logical.greenhouse.zone2.temperature_avg.meta.v1"
Z1_HUMIDITY_RAW = "read.raw.greenhouse.zone1.humidity.meta.v1"
Z1_HUMIDITY = "read.logical.greenhouse.zone1.humidity.meta.v1"
Z2_HUMIDITY_RAW = "read.raw.greenhouse.zone2.humidity.meta.v1"
Z2_HUMIDITY = "read.logical.greenhouse.zone2.humidity.meta.v1"
FAN_DESIRED = "write.shadow.greenhouse.fan.setpoint.desired.v1"
FAN_REPORTED = "write.shadow.greenhouse.fan.setpoint.reported.v1"
FAN_EFFECTIVE = "state.shadow.greenhouse.fan.setpoint.effective.v1"

TEMP_PERIOD_US = 250_000
HUMIDITY_PERIOD_US = 500_000
HOT_ABOVE_C = 28.0


def greenhouse_spec(seed: int = 1, manifest_id: bytes | None = None) -> PartitionSpec:
    """The greenhouse sensor partition; ``seed`` seeds the sensors' noise."""
    routes = [
        RouteSpec(name)
        for name in (
            Z1_TEMP_RAW, Z1_TEMP, Z1_TEMP_AVG, Z1_HOT, Z2_TEMP_RAW, Z2_TEMP, Z2_TEMP_AVG,
            Z1_HUMIDITY_RAW, Z1_HUMIDITY, Z2_HUMIDITY_RAW, Z2_HUMIDITY,
            FAN_DESIRED, FAN_REPORTED, FAN_EFFECTIVE,
        )
    ]  # fmt: skip
    sources = [
        # 12-bit-ish ADC counts at 0.01 degC per count: zone 1 swings 24..30 degC, zone 2 20..23.
        Source(Z1_TEMP_RAW, TEMP_PERIOD_US, Waveform.TRIANGLE, center=2700.0, amplitude=300.0, cycle=48, noise=8.0, seed=seed),
        Source(Z2_TEMP_RAW, TEMP_PERIOD_US, Waveform.TRIANGLE, center=2150.0, amplitude=150.0, cycle=64, noise=8.0, seed=seed + 1, phase_us=50_000),
        Source(Z1_HUMIDITY_RAW, HUMIDITY_PERIOD_US, Waveform.RANDOM_WALK, center=60.0, amplitude=15.0, noise=1.5, seed=seed + 2, phase_us=100_000),
        Source(Z2_HUMIDITY_RAW, HUMIDITY_PERIOD_US, Waveform.TRIANGLE, center=55.0, amplitude=10.0, cycle=20, seed=seed + 3, phase_us=150_000),
    ]  # fmt: skip
    operators = [
        Scale(Z1_TEMP_RAW, Z1_TEMP, scale=0.01, offset=0.0),
        CountWindow(Z1_TEMP, Z1_TEMP_AVG, size=4, step=1, aggregate=Aggregate.MEAN),
        Threshold(Z1_TEMP_AVG, Z1_HOT, above=HOT_ABOVE_C),
        Scale(Z2_TEMP_RAW, Z2_TEMP, scale=0.01, offset=0.0),
        TimeWindow(Z2_TEMP, Z2_TEMP_AVG, width_us=2_000_000, slide_us=1_000_000, aggregate=Aggregate.MEAN),
        Deadband(Z1_HUMIDITY_RAW, Z1_HUMIDITY, band=2.0),
        RateLimit(Z2_HUMIDITY_RAW, Z2_HUMIDITY, max_events=1, interval_us=2_000_000),
        WriteBinding(FAN_DESIRED, FAN_EFFECTIVE, FAN_REPORTED, apply_us=200_000),
    ]
    return PartitionSpec(
        name="greenhouse-sensors",
        routes=routes,
        sources=sources,
        operators=operators,
        to_host=[Z1_TEMP_AVG, Z1_HOT, Z2_TEMP_AVG, Z1_HUMIDITY, Z2_HUMIDITY, FAN_REPORTED, FAN_EFFECTIVE],
        from_host=[FAN_DESIRED],
        manifest_id=manifest_id,
    )
