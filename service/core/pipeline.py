"""Pixels to embedded faces: decode, detect, gate on quality, align and embed. One hop per layer; the
decision about what the faces mean is the recognizer's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FaceIdError, FaceProblem, LowQuality, MultipleFaces, NoFace, TooManyFaces
from .images import decode_image
from .ports import Detector, Embedder, FaceCrops
from .quality import QualityLimits, failures, measure
from .records import Detection, Face, NewFace, Probe, photo_hash


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_decoded_bytes: int


@dataclass(frozen=True)
class EnrollmentCheck:
    """One image as enrollment would judge it (``FacePipeline.enrollment_check``)."""
    detection: Detection
    face: int | None                   # index in detection.faces of the face enrollment would take
    quality: dict[str, float] | None   # that face's measures (quality.measure)
    failed: list[dict[str, object]]    # the checks it fails, each with value and limit
    problem: FaceProblem | None        # the error registration would answer, None when it would pass


class FacePipeline:
    def __init__(self, detector: Detector, embedder: Embedder, crops: FaceCrops, *, image_limits: ImageLimits,
                 quality: QualityLimits, keep_crops: bool = True) -> None:
        self.detector, self.embedder, self.crops = detector, embedder, crops
        self.image_limits, self.quality, self.keep_crops = image_limits, quality, keep_crops

    def prepare(self) -> FacePipeline:
        """Load every model now: a broken model stops the start, and the first request does not pay."""
        self.detector.prepare()
        self.embedder.prepare()
        return self

    @property
    def ready(self) -> bool:
        return self.detector.ready and self.embedder.ready

    def decode(self, data: bytes) -> np.ndarray:
        limits = self.image_limits
        return decode_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels,
                            max_decoded_bytes=limits.max_decoded_bytes)

    def detect(self, data: bytes, *, max_faces: int | None = None) -> Detection:
        rgb = self.decode(data)
        faces = _at_most(self.detector.detect(rgb), max_faces)
        return Detection(image_width=rgb.shape[1], image_height=rgb.shape[0], faces=faces)

    def probes(self, data: bytes, *, all_faces: bool = False, index: int | None = None,
               max_faces: int | None = None) -> list[Probe]:
        """The largest face (or every face, at most ``max_faces``) of an image, embedded; ``no_face`` if there
        is none."""
        rgb = self.decode(data)
        faces = self.detector.detect(rgb, main_face=not all_faces)
        if not faces:
            raise NoFace(details={} if index is None else {"image_index": index})
        faces = _at_most(faces, max_faces) if all_faces else faces[:1]
        return [Probe(f, e) for f, e in zip(faces, self.embedder.get(rgb, faces))]

    def enrollment_face(self, data: bytes, index: int) -> NewFace:
        """Exactly one usable face that passes the quality gate, embedded, with its crop. Every refusal names
        the image (``image_index``), an undecodable one too: a bulk import drops that photo and goes on."""
        try:
            rgb = self.decode(data)
        except FaceIdError as exc:
            exc.details = {**exc.details, "image_index": index}
            raise
        # Faces below the quality gate's size neither count as a second face nor pass: the search skips the
        # scales that find only those (half the detection's CPU on LFW; the same outcome for 962 of 963 photos).
        found = self.detector.detect(rgb, min_size=self.quality.min_face_size)
        face, quality = self._enrollment_choice(rgb, found, index)
        failed = failures(quality, self.quality)
        if failed:
            raise self._low_quality(failed, index)
        embedding = self.embedder.get(rgb, [face])[0]
        crop = self.crops.stored_crop(rgb, face) if self.keep_crops else None
        return NewFace(embedding=embedding, box=face.box_dict(), quality=quality, crop_jpeg=crop,
                       source_sha256=photo_hash(data))

    def enrollment_check(self, data: bytes) -> EnrollmentCheck:
        """What enrollment would say about one image, without embedding or storing anything: every face
        found, the one it would take, that face's quality and each check it fails (the admin console shows
        them on the photo before registering). Undecodable images raise as they would in enrollment."""
        rgb = self.decode(data)
        faces = self.detector.detect(rgb)
        detection = Detection(image_width=rgb.shape[1], image_height=rgb.shape[0], faces=faces)
        try:
            face, quality = self._enrollment_choice(rgb, faces, 0)
        except (NoFace, MultipleFaces) as problem:
            return EnrollmentCheck(detection, None, None, [], problem)
        failed = failures(quality, self.quality)
        chosen = next(i for i, f in enumerate(faces) if f is face)
        return EnrollmentCheck(detection, chosen, quality, failed, self._low_quality(failed, 0) if failed else None)

    def _enrollment_choice(self, rgb: np.ndarray, faces: list[Face], index: int) -> tuple[Face, dict[str, float]]:
        """The one face an enrollment image gives, and its quality; ``no_face`` or ``multiple_faces``."""
        if not faces:
            raise NoFace("no face found in an enrollment image", details={"image_index": index})
        # Background faces far smaller than the subject do not make a selfie ambiguous.
        usable = [f for f in faces if f.probability >= self.quality.min_probability
                  and f.size >= max(self.quality.min_face_size, 0.5 * faces[0].size)]
        if len(usable) > 1:
            raise MultipleFaces(f"{len(usable)} faces found; an enrollment image must show exactly one person",
                                details={"image_index": index, "faces": len(usable)})
        face = usable[0] if usable else faces[0]
        # Quality is measured on one model-independent crop, so the limits mean the same for every model id.
        return face, measure(face, self.crops.sharpness(rgb, face))

    @staticmethod
    def _low_quality(failed: list[dict[str, object]], index: int) -> LowQuality:
        return LowQuality(f"the face fails the quality check(s): {', '.join(str(f['check']) for f in failed)}",
                          details={"image_index": index, "failed": failed})

    def reembed_crop(self, crop_jpeg: bytes) -> np.ndarray | None:
        """Re-detect in a stored crop and embed with this pipeline's model (reindex): each model aligns from
        its own box and landmarks. None when no face is found again."""
        rgb = self.decode(crop_jpeg)
        found = self.detector.detect(rgb)
        return self.embedder.get(rgb, found[:1])[0] if found else None


def _at_most(faces: list[Face], max_faces: int | None) -> list[Face]:
    """``faces``, refused before any embedding when there are more than one request may take: a grid of 400
    faces took 15 s and 6 GB."""
    if max_faces is not None and len(faces) > max_faces:
        raise TooManyFaces(f"{len(faces)} faces found; at most {max_faces} per request",
                           details={"faces": len(faces), "max_faces": max_faces})
    return faces
