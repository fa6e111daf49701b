"""Image duplicates: candidates from the vectors, each pair verified with local features, grouped as stars.

A pair is a duplicate when its bytes are identical, or when local features tie it with one geometric transform
(at least :attr:`VerifyRule.min_inliers` consistent keypoints) and the two pictures agree in their aligned
overlap (:attr:`VerifyRule.min_agreement`), or, for pictures too smooth for keypoints, when the global vectors are
already decisive and the whole frames agree patch by patch. Groups are stars: a representative and members each
verified against it (:func:`lookalike.search.groups.star_groups`); a weak link between two members never joins
anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from lookalike.search.candidates import ChunkSearch, image_candidates
from lookalike.search.feature_cache import FeatureCache
from lookalike.search.features import Features
from lookalike.search.groups import DuplicateGroup, GroupItem, GroupKind, Relation, star_groups
from lookalike.search.local_candidates import local_candidates
from lookalike.search.representatives import representative_rank
from lookalike.search.smooth import colour_difference, dense_match, hue_shift, likely_turn
from lookalike.search.verify import Match, match, plain_surround, thin_mat, whole_frame
from lookalike.storage.library import CollectionStore
from lookalike.storage.records import MediaRecord

log = logging.getLogger(__name__)

WHOLE = 0.8  # a side whose matched region covers this share of it is shown whole


@dataclass(frozen=True)
class VerifyRule:
    """When a candidate pair is a duplicate; calibrated on the dev half of ``benchmarks/dupes_quality.py``.

    Attributes:
        k: nearest images per image taken as candidates.
        floor: cosine under which a neighbour is not a candidate.
        nprobe: inverted lists an IVF index scans per picture (search uses 32: duplicates lie far closer than
            search's neighbours, and every picture is a query here).
        min_inliers: keypoint matches one transform must explain.
        min_agreement: share of the aligned overlap's structured patches that must agree.
        max_moved: share of the overlap's patches that may agree only once shifted (content that moved: another
            moment of the same scene, not a copy).
        min_spread: share of the overlap's cells with keypoints in both pictures that must hold an inlier (a
            shared window frame or caption around two different pictures matches in a few cells only).
        max_block: the largest solid block of the overlap that may disagree (a picture pasted over a shared
            background, not an edit's strokes).
        smooth_keypoints: pictures with fewer keypoints than this are too smooth to verify by keypoints alone
            ...
        smooth_cosine: ... and, at this cosine of their global vectors or above, are compared without keypoints:
            whole frame to whole frame (:func:`~lookalike.search.verify.whole_frame`), and the smaller placed in
            the larger by correlation over sizes, refined by ECC (:func:`~lookalike.search.verify.dense_match`:
            crops, insets, small turns); the aligned overlap must then pass the same checks as a keypoint match,
            with :attr:`smooth_agreement` and :attr:`max_hue_shift`.
        smooth_agreement: patch agreement two smooth pictures' aligned overlap needs (smooth pictures have few
            structured patches: a stricter share than keypoint matches need).
        max_hue_shift: degrees the hues of the aligned overlap may differ by, cell by cell
            (:func:`~lookalike.search.smooth.hue_shift`): a copy keeps each part's hue through brightness, contrast,
            saturation and compression (dev pairs of one picture: 99.9% within 18.8 degrees, 9 of 9,329 beyond 20,
            most involving a JPEG at quality 12), a recoloured variant of a design (the same grey levels in blue
            and in teal) does not (dev: 22.7 for a flipped copy against the teal variant, the others beyond 30;
            ``python -m benchmarks.dupes_ablation``).
        local_per_image: partners proposed by shared keypoints (:mod:`~lookalike.search.local_candidates`:
            collages, pictures-in-picture, screenshots and tight crops, whose global vectors are far from their
            original's): a pair is kept when it is among the most-voted of either picture, so a picture many
            others hold may get more; 0 turns that pass off. The pass extracts the local features of every picture
            (about 0.1 s each on one core), not only of those with a vector candidate.
        local_min_votes: votes such a pair needs (a keypoint of either picture with a twin in the other is a vote:
            a keypoint both find is two).
        local_budget: descriptors that pass holds at most: about 4 GB at the full budget (uint8 codes, their index
            and the search buffers), beside the feature cache; a library with more than ``local_budget / 100``
            pictures skips the pass (fewer than 100 descriptors a picture) and says so.
        mirror_cosine: a flipped copy is looked for (a second matching pass) only at this cosine or above (image
            vectors are mirror-invariant, so this only spares the second pass for pairs far apart).
    """

    k: int = 10
    floor: float = 0.4
    nprobe: int = 8
    min_inliers: int = 15
    min_agreement: float = 0.75
    max_moved: float = 0.01
    min_spread: float = 0.55
    max_block: float = 0.15
    smooth_keypoints: int = 60
    smooth_cosine: float = 0.5
    smooth_agreement: float = 0.9
    max_hue_shift: float = 20.0
    mirror_cosine: float = 0.5
    local_per_image: int = 10
    local_min_votes: int = 8
    local_budget: int = 10_000_000


@dataclass(frozen=True)
class Verdict:
    """The decision on one pair ``(a, b)``: ``match`` maps ``a`` onto ``b``; ``colour`` (duplicates): how far their
    colours are apart where they overlap (:func:`~lookalike.search.smooth.colour_difference`: it tells originals
    from copies edited in colour); ``smooth`` (other pairs): the comparison without keypoints, if one was made."""

    duplicate: bool
    method: str
    score: float
    match: Match | None = None
    colour: float | None = None
    smooth: Match | None = None


def verify(fa: Features | None, fb: Features | None, cosine: float, rule: VerifyRule) -> Verdict:
    """Whether two pictures are the same picture, edited; ``cosine`` is their global vectors' similarity."""
    if fa is None or fb is None:
        return Verdict(False, "unreadable", 0.0)
    m = match(fa, fb, mirror=cosine >= rule.mirror_cosine)
    verdict = judge(fa, fb, m, None, rule)
    if verdict.duplicate:
        return verdict
    smooth = smooth_match(fa, fb, cosine, rule)
    return verdict if smooth is None else judge(fa, fb, m, smooth, rule)


def content_key(rec: MediaRecord) -> str:
    """The key that sets the way round a catalogued file's pairs are matched (:func:`verify_in_order`): its
    content's SHA-256, or its path when it has none."""
    return rec.sha256 or rec.path


def reversed_order(keys: tuple[str, str]) -> bool:
    """Whether a pair with these content keys is matched second onto first (:func:`verify_in_order`)."""
    return keys[1] < keys[0]


def verify_in_order(
    fa: Features | None,
    fb: Features | None,
    cosine: float,
    rule: VerifyRule,
    keys: tuple[str, str],
    memo: dict[tuple[str, str, bool, bool], Verdict] | None = None,
) -> Verdict:
    """:func:`verify`, made the same way round whichever way the pair comes: ``a`` onto ``b`` when ``a``'s key
    (its content's SHA-256) sorts first, else ``b`` onto ``a``, the match then seen from ``a``. Matching is not
    symmetric (the ratio test looks from one picture, the overlap is checked on one picture's grid), so a pair
    otherwise got its verdict in whichever order its files' ids, a search or the command line gave it: two
    libraries of the same files grouped a borderline crop differently, and ``explain`` could contradict ``dupes``.

    ``memo`` keeps a run's verdicts by content (and what :func:`verify` reads of the cosine): two contents are
    verified once however many byte-identical files each has (a library of photos each kept twice verified every
    other pair four times). The caller leaves it out for a pair with a file it cannot read."""
    memo = {} if memo is None else memo
    turned = reversed_order(keys)
    key = (*(keys[::-1] if turned else keys), cosine >= rule.mirror_cosine, cosine >= rule.smooth_cosine)
    if key not in memo:
        memo[key] = verify(fb, fa, cosine, rule) if turned else verify(fa, fb, cosine, rule)
    v = memo[key]
    return replace(v, match=v.match and v.match.swapped(), smooth=v.smooth and v.smooth.swapped()) if turned else v


def smooth_match(fa: Features, fb: Features, cosine: float, rule: VerifyRule) -> Match | None:
    """For a pair too smooth for keypoints (see :attr:`VerifyRule.smooth_keypoints`): the whole-frame comparison
    when it passes, as is or turned by the right angle a thumbnail comparison points to
    (:func:`~lookalike.search.smooth.likely_turn`), else the dense placement (crops, insets, small turns) when that
    passes, else the whole-frame comparison as is as the evidence shown; None for other pairs."""
    if min(len(fa), len(fb)) >= rule.smooth_keypoints or cosine < rule.smooth_cosine:
        return None
    whole = whole_frame(fa, fb)
    if _smooth_duplicate(fa, fb, whole, rule):
        return whole
    quarter = likely_turn(fa, fb)
    if quarter:
        turned = whole_frame(fa, fb, quarter)
        if _smooth_duplicate(fa, fb, turned, rule):
            return turned
    dense = dense_match(fa, fb, mirror=cosine >= rule.mirror_cosine)
    return dense if dense is not None and _smooth_duplicate(fa, fb, dense, rule) else whole


def _shown_whole(fa: Features, fb: Features, m: Match) -> bool:
    """One of the two pictures is shown whole by the other (not two pictures sharing a part)."""
    return (m.coverage_a >= WHOLE or plain_surround(fa, m.region_a)) or (
        m.coverage_b >= WHOLE or plain_surround(fb, m.region_b)
    )


MIN_OVERLAP = 0.045  # a placement over less of the larger picture than this (a few pixels of it) is no evidence


def _smooth_duplicate(fa: Features, fb: Features, m: Match, rule: VerifyRule) -> bool:
    return (
        max(m.coverage_a, m.coverage_b) >= MIN_OVERLAP
        and min(m.coverage_a, m.coverage_b) >= MIN_OVERLAP
        and m.agreement >= rule.smooth_agreement
        and m.moved <= rule.max_moved
        and m.block <= rule.max_block
        and _shown_whole(fa, fb, m)
        and hue_shift(fa, fb, m) <= rule.max_hue_shift
    )


def judge(fa: Features, fb: Features, m: Match | None, whole: Match | None, rule: VerifyRule) -> Verdict:
    """The decision on the evidence: ``m`` the local-feature match of ``fa`` onto ``fb``, ``whole`` the
    comparison without keypoints (only for pictures too smooth for keypoints whose global vectors are close)."""
    if m is not None and next(failed_checks(fa, fb, m, rule), None) is None:
        return Verdict(True, "local", m.agreement, m, colour_difference(fa, fb, m))
    if whole is not None and _smooth_duplicate(fa, fb, whole, rule):
        return Verdict(True, "smooth", whole.agreement, whole, colour_difference(fa, fb, whole))
    return Verdict(False, "local", 0.0 if m is None else m.agreement, m, smooth=whole)


def failed_checks(fa: Features, fb: Features, m: Match, rule: VerifyRule) -> Iterator[str]:
    """The checks of the keypoint rule that the match ``m`` of ``fa`` onto ``fb`` fails, in the order :func:`judge`
    applies them (lazily: the decision stops at the first): ``inliers``, ``whole`` (two pictures that only share a
    part, such as two collages with one photo in common, are not copies of each other), ``agreement``, ``moved``,
    ``spread``, ``block``, ``hue``."""
    checks: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("inliers", lambda: m.inliers >= rule.min_inliers),
        ("whole", lambda: _shown_whole(fa, fb, m)),
        ("agreement", lambda: m.agreement >= rule.min_agreement),
        ("moved", lambda: m.moved <= rule.max_moved),
        ("spread", lambda: m.spread >= rule.min_spread),
        ("block", lambda: m.block <= rule.max_block),
        ("hue", lambda: hue_shift(fa, fb, m) <= rule.max_hue_shift),
    )
    return (name for name, passes in checks if not passes())


def relation(rep: Features, member: Features, m: Match) -> Relation:
    """What ``member`` is to ``rep`` given the match of ``rep`` onto ``member``."""
    rep_full, member_full = m.coverage_a >= WHOLE, m.coverage_b >= WHOLE
    rep_whole = rep_full or plain_surround(rep, m.region_a)
    member_whole = member_full or plain_surround(member, m.region_b)
    if rep_whole and member_whole:
        if m.flipped:
            return Relation.FLIPPED
        if abs(m.rotation) > 2.0:
            return Relation.ROTATED
        if not member_full or thin_mat(member, m.region_b, rep, m.region_a):  # plain borders round it
            return Relation.FRAMED
        if not rep_full or thin_mat(rep, m.region_a, member, m.region_b):  # what the representative frames: kept
            return Relation.CROPPED
        return Relation.EDITED if rep.size == member.size else Relation.RESIZED
    if member_whole:
        return Relation.CROPPED
    if rep_whole:
        return Relation.CONTAINS
    return Relation.CROPPED


def find_image_duplicates(
    store: CollectionStore, rule: VerifyRule | None = None, search: ChunkSearch | None = None
) -> list[DuplicateGroup]:
    """Verified groups of duplicate images (see the module docstring); ``search``: where the candidate stage
    searches (default: here)."""
    rule = rule or VerifyRule()
    cands = image_candidates(store, rule.k, rule.floor, rule.nprobe, search)
    cid = store.info.id
    # every picture takes part in the pass over shared keypoints; otherwise those with a vector candidate only
    local = _local_pass(len(cands.ids), rule)
    involved = np.arange(len(cands.ids)) if local else np.unique(np.concatenate([cands.a, cands.b]))
    if len(involved) < 2:
        return []
    stored = store.catalog.hydrate(cid, cands.ids[involved].tolist())
    media_of = {int(p): stored[int(cands.ids[p])].media_id for p in involved if int(cands.ids[p]) in stored}
    records = store.catalog.media_many(cid, media_of.values())
    cache = FeatureCache(records)
    verdicts: dict[tuple[int, int], Verdict] = {}
    memo: dict[tuple[str, str, bool, bool], Verdict] = {}  # by content: byte-identical files are verified once
    nearby: dict[int, set[int]] = {}
    vectors: dict[int, np.ndarray] = {}

    def decide(ma: int, mb: int, cos: float | None = None) -> Verdict:
        """The verdict on a pair: identical bytes at once, else verified (``cos``: read when not given)."""
        if records[ma].sha256 and records[ma].sha256 == records[mb].sha256:
            return Verdict(True, "identical", 1.0)
        if cos is None:
            cos = float(_vector(store, ma, vectors) @ _vector(store, mb, vectors))
        fa, fb, keys = cache.get(ma), cache.get(mb), (content_key(records[ma]), content_key(records[mb]))
        return verify_in_order(fa, fb, cos, rule, keys, memo if fa is not None and fb is not None else None)

    for a, b, cos in zip(cands.a.tolist(), cands.b.tolist(), cands.cosine.tolist(), strict=True):
        ma, mb = media_of.get(a), media_of.get(b)
        if ma is None or mb is None or ma == mb:
            continue
        nearby.setdefault(ma, set()).add(mb)
        nearby.setdefault(mb, set()).add(ma)
        verdicts[(ma, mb)] = decide(ma, mb, float(cos))
    # in picture order, so that the feature cache serves each picture's pairs together
    for ma, mb in sorted(local_pairs(sorted(set(media_of.values())), cache, rule) if local else []):
        if (ma, mb) in verdicts or (mb, ma) in verdicts:
            continue
        verdicts[(ma, mb)] = decide(ma, mb)
        nearby.setdefault(ma, set()).add(mb)
        nearby.setdefault(mb, set()).add(ma)

    def confirm(rep: int, member: int) -> bool:
        """A file verified against a member only is checked against the representative itself."""
        key = (rep, member) if (rep, member) in verdicts or (member, rep) not in verdicts else (member, rep)
        if key not in verdicts:
            verdicts[key] = decide(*key)
        return verdicts[key].duplicate

    return _stars(verdicts, records, cache, confirm, nearby)


def _local_pass(pictures: int, rule: VerifyRule) -> bool:
    """Whether the pass over shared keypoints runs: it is on, and at least 100 descriptors a picture fit its
    budget (a library too large for it is said so in the log)."""
    if rule.local_per_image <= 0 or pictures < 2:
        return False
    if rule.local_budget // pictures < 100:
        log.warning(
            "%d pictures: collages, screenshots and tight crops are not looked for (candidates from shared "
            "keypoints need at least 100 descriptors a picture within a budget of %s descriptors)",
            pictures,
            f"{rule.local_budget:,}",
        )
        return False
    return True


def local_pairs(media: list[int], cache: FeatureCache, rule: VerifyRule) -> list[tuple[int, int]]:
    """Pairs of pictures that share many keypoints (see :mod:`lookalike.search.local_candidates`)."""
    per_picture = min(1000, rule.local_budget // max(1, len(media)))
    pairs = local_candidates(
        len(media), lambda i: cache.get(media[i]), rule.local_per_image, rule.local_min_votes, per_picture
    )
    return [(media[a], media[b]) for a, b in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)]


def _vector(store: CollectionStore, media_id: int, memo: dict[int, np.ndarray]) -> np.ndarray:  # read once
    if media_id not in memo:
        memo[media_id] = store.catalog.vectors_of(store.info.id, media_id, store.dim)[0].embedding
    return memo[media_id]


def _stars(
    verdicts: dict[tuple[int, int], Verdict],
    records: dict[int, MediaRecord],
    cache: FeatureCache,
    confirm: Callable[[int, int], bool],
    nearby: dict[int, set[int]],
) -> list[DuplicateGroup]:
    links: dict[int, dict[int, bool]] = {}
    for (a, b), v in verdicts.items():
        if v.duplicate:
            links.setdefault(a, {})[b] = True
            links.setdefault(b, {})[a] = True
    rank = representative_rank(verdicts, records, cache.get, links)
    stars = star_groups(links, rank, confirm, nearby)
    # a file's byte-identical twins go where it goes (the star may have taken one twin through a link the other
    # never got as a candidate): the same bytes are never in two groups, nor one grouped and the other left out
    by_sha: dict[str, list[int]] = {}
    for media_id in sorted(links):
        if records[media_id].sha256:
            by_sha.setdefault(records[media_id].sha256 or "", []).append(media_id)
    placed = {m for members in stars for m in members}
    groups = []
    for members in stars:
        rep = members[0]
        items = [_item(rep, records[rep], Relation.REPRESENTATIVE, None, 1.0, "representative")]
        for twin in by_sha.get(records[rep].sha256 or "", []):
            if twin not in placed:
                placed.add(twin)
                items.append(_item(twin, records[twin], Relation.IDENTICAL, None, 1.0, "identical"))
        for m in members[1:]:
            v = verdicts.get((rep, m)) or verdicts[(m, rep)]
            assert v.match is not None or v.method == "identical"
            mt = None if v.match is None else (v.match if (rep, m) in verdicts else v.match.swapped())
            rel = Relation.IDENTICAL if v.method == "identical" else _relation(rep, m, mt, cache)
            items.append(_item(m, records[m], rel, mt, v.score, v.method))
            for twin in by_sha.get(records[m].sha256 or "", []):
                if twin not in placed:
                    placed.add(twin)
                    items.append(_item(twin, records[twin], rel, mt, v.score, v.method))
        groups.append(DuplicateGroup(min(it.score for it in items), items, GroupKind.DUPLICATES))
    return groups


def _relation(rep: int, member: int, m: Match | None, cache: FeatureCache) -> Relation:
    fr, fm = cache.get(rep), cache.get(member)
    if m is None or fr is None or fm is None:
        return Relation.EDITED
    return relation(fr, fm, m)


def _item(media_id: int, rec: MediaRecord, rel: Relation, m: Match | None, score: float, method: str) -> GroupItem:
    return GroupItem(
        media_id,
        rec.path,
        rec.kind,
        relation=rel,
        score=round(float(score), 4),
        inliers=None if m is None else m.inliers,
        region=None if m is None else m.region_b,
        rep_region=None if m is None else m.region_a,
        method=method,
    )
