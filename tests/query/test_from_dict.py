"""from_dict is the inverse of to_dict on a real graph's answers: the shapes a node sends as JSON
become the same typed objects as local queries."""

from __future__ import annotations

import dataclasses
import json

import pytest

from manyfold import query
from manyfold.examples import greenhouse
from manyfold.graph import EnvelopeId, Taint
from manyfold.query.from_dict import AnswerShapeError, from_dict
from manyfold.query.model import Flow, Lineage, RouteTaints, SchedulerState, Topology, Watermark


@pytest.fixture(scope="module")
def gh():
    return greenhouse.run(greenhouse.build(seed=7))


def _through_json(obj):
    return json.loads(json.dumps(obj.to_dict()))


def test_round_trip_of_every_kind_on_the_greenhouse(gh):
    """Topology, flow, scheduler, watermarks, taints and a lineage survive to_dict -> JSON -> from_dict unchanged."""
    g = gh.graph
    answers = [(Topology, query.topology(g)), (Flow, query.flow(g)), (SchedulerState, query.scheduler(g))]
    answers += [(Watermark, w) for w in query.watermarks(g)]
    answers += [(RouteTaints, t) for t in query.taints(g)]
    assert any(t.taints for _, t in answers if isinstance(t, query.RouteTaints)), "the greenhouse has taints to carry"
    for cls, answer in answers:
        again = from_dict(cls, _through_json(answer))
        assert again == answer, cls.__name__
        assert cls.from_dict(answer.to_dict()) == answer


def test_lineage_round_trip_keeps_everything_but_record_types(gh):
    """A lineage comes back equal but for its values: a record value (a dataclass) arrives as its plain data."""
    lineage = query.lineage(gh.graph, gh.fan.request)
    again = Lineage.from_dict(_through_json(lineage))
    assert again.to_dict() == lineage.to_dict()
    strip = lambda lin: [dataclasses.replace(s, value=None) for s in lin.steps]  # noqa: E731
    assert strip(again) == strip(lineage) and (again.root, again.inputs, again.missing) == (lineage.root, lineage.inputs, lineage.missing)


def test_typed_fields_come_back_typed(gh):
    """Routes, envelope ids and taints are typed objects again, not strings."""
    taints = next(t for t in query.taints(gh.graph) if t.taints)
    again = RouteTaints.from_dict(_through_json(taints))
    assert all(isinstance(t, Taint) for t in again.taints) and type(again.route) is type(taints.route)
    lineage = Lineage.from_dict(_through_json(query.lineage(gh.graph, gh.fan.request)))
    assert isinstance(lineage.root, EnvelopeId) and lineage.step(lineage.root).route == gh.fan.request


def test_a_wrong_shape_is_one_sentence_naming_the_field():
    """A missing field or an unknown taint names where it is, not a traceback from deep inside."""
    with pytest.raises(AnswerShapeError, match="needs 'taints'"):
        RouteTaints.from_dict({"route": "read.logical.a.b.c.meta.v1", "added": [], "repaired": []})
    with pytest.raises(AnswerShapeError, match=r"answer.taints"):
        RouteTaints.from_dict({"route": "read.logical.a.b.c.meta.v1", "taints": ["no_such_taint"], "added": [], "repaired": []})
