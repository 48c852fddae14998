"""Head pose (yaw, pitch, roll in degrees) from face mesh landmarks with solvePnP.

Six landmarks (nose tip, chin, outer eye corners, mouth corners) are matched to
a canonical 3D face model and ``cv2.solvePnP`` finds the head rotation under a
pinhole camera with focal length = image width and the principal point at the
image centre (no calibration is known for web video).

The model is written in camera axes (x right, y down, z away from the camera,
nose tip at the origin), so the identity rotation is a face looking straight
into the camera. Angles are read as ``R = Ry(yaw) Rx(pitch) Rz(roll)`` and
reported with these signs, as the viewer sees the image:

- yaw > 0: the nose turns toward the image's right (the subject turns to their left);
- pitch > 0: the nose turns up;
- roll > 0: the face rotates counter-clockwise in the image.

The usual six-point model is written with y up and z toward the viewer; fed
to solvePnP as it is, a frontal face comes out rotated 180 degrees about x and
any Euler split reads a pitch near +-180 (the well-known "pitch bias"). Here the
model is in camera axes instead, so a frontal face is the identity. The
rotation is then taken relative to the line of sight through the face centre,
not the optical axis: a face high in a wide shot that looks at the lens would
otherwise read ~25 degrees of pitch. Measured on real faces (``docs/faces.md``):
the estimate is mirror-symmetric (a flipped frame reads -yaw, -roll, same
pitch within 2 degrees) and a frontal speaker reads within 10 degrees of 0/0/0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LANDMARK_IDS = (1, 152, 33, 263, 61, 291)
"""Face mesh indices: nose tip, chin, outer eye corners (image left, right), mouth corners."""

MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip
        (0.0, 330.0, 65.0),  # chin
        (-225.0, -170.0, 135.0),  # outer eye corner, image left (subject's right)
        (225.0, -170.0, 135.0),  # outer eye corner, image right
        (-150.0, 150.0, 125.0),  # mouth corner, image left
        (150.0, 150.0, 125.0),  # mouth corner, image right
    ],
    dtype=np.float64,
)
"""The common six-point head model (arbitrary units), in camera axes."""

@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees; signs as in the module docstring."""

    yaw: float
    pitch: float
    roll: float


def angles_from_rotation(rotation: np.ndarray) -> HeadPose:
    """Yaw, pitch, roll of a camera-axes rotation matrix ``R = Ry Rx Rz``."""
    r = np.asarray(rotation, dtype=np.float64)
    theta = math.atan2(r[0, 2], r[2, 2])
    phi = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    psi = math.atan2(r[1, 0], r[1, 1])
    # Camera y points down: a positive rotation about it turns the nose toward image left,
    # about x it turns the nose down, about z it turns the face clockwise on screen.
    return HeadPose(yaw=-math.degrees(theta), pitch=-math.degrees(phi), roll=-math.degrees(psi))


def rotation_from_angles(pose: HeadPose) -> np.ndarray:
    """The rotation matrix of ``pose`` (inverse of :func:`angles_from_rotation`)."""
    t, p, r = (-math.radians(a) for a in (pose.yaw, pose.pitch, pose.roll))
    ry = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _ray_rotation(direction: np.ndarray) -> np.ndarray:
    """The smallest rotation taking the optical axis onto ``direction`` (Rodrigues)."""
    d = direction / np.linalg.norm(direction)
    axis = np.cross([0.0, 0.0, 1.0], d)
    s, c = float(np.linalg.norm(axis)), float(d[2])
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def camera_matrix(width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics used for every frame: focal length = width, centred."""
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)


def _in_front(rvec: np.ndarray, tvec: np.ndarray) -> bool:
    """Whether every model point of a solution lies in front of the camera."""
    import cv2

    return bool(((cv2.Rodrigues(rvec)[0] @ MODEL_POINTS.T)[2] + tvec.reshape(3)[2] > 0).all())


def _solve(image_points: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rvec, tvec`` of the model seen at ``image_points``.

    The iterative solver starts from a six-point DLT, which on a small face's
    noisy landmarks can land in a minimum with the face behind the camera (a
    192x192 frame of the shared speaker: tz -33, 360 px reprojection error,
    read as 53 degrees of pitch between two frames of 1 degree). SQPnP, which
    finds the global minimum, is asked only then, so the usual frame's pose is
    unchanged.

    Raises:
        ValueError: neither solver finds the face in front of the camera.
    """
    import cv2

    for flags in (cv2.SOLVEPNP_ITERATIVE, cv2.SOLVEPNP_SQPNP):
        ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, np.zeros(4), flags=flags)
        if ok and _in_front(rvec, tvec):
            return rvec, tvec
    raise ValueError("head_pose: solvePnP found no solution in front of the camera")


def head_pose(landmarks: np.ndarray, width: int, height: int) -> HeadPose:
    """Head pose of one face from its (468, 2+) pixel landmarks.

    Raises:
        ValueError: wrong landmark shape, non-finite landmarks, or solvePnP found no solution.
    """
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] <= max(LANDMARK_IDS) or points.shape[1] < 2:
        raise ValueError(f"head_pose: expected (468, 2+) landmarks, got shape {points.shape}")
    image_points = points[list(LANDMARK_IDS), :2]
    if not np.isfinite(image_points).all():  # OpenCV would fail an internal assertion (cv2.error)
        raise ValueError("head_pose: the pose landmarks are not all finite")
    rvec, tvec = _solve(image_points, camera_matrix(width, height))
    camera_rotation = cv2.Rodrigues(rvec)[0]
    # Pose as it appears: relative to the line of sight through the face centre, not the optical axis.
    centre = camera_rotation @ MODEL_POINTS.mean(axis=0) + tvec.reshape(3)
    rotation = _ray_rotation(centre).T @ camera_rotation
    return angles_from_rotation(rotation)
