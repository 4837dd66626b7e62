"""The four uses an artist decides on, in the words artists read.

How each use is written in the outside formats (CAWG, AIPREF, Content
Signals, RSL, TDMRep) is one table in ``consent.signals.formats``.
"""

from dataclasses import dataclass

from django.db import models


class Use(models.TextChoices):
    GENAI_TRAINING = "genai-training", "Generative AI training"
    AI_TRAINING = "ai-training", "Other AI training"
    AI_INFERENCE = "ai-inference", "Input to AI features"
    DATA_MINING = "data-mining", "Data mining"


@dataclass(frozen=True)
class UseInfo:
    slug: str
    name: str
    description: str  # the plain words shown to artists


USES: dict[str, UseInfo] = {
    Use.GENAI_TRAINING: UseInfo(
        Use.GENAI_TRAINING,
        "Generative AI training",
        "Train generative AI that can make music or imitate voices and styles",
    ),
    Use.AI_TRAINING: UseInfo(
        Use.AI_TRAINING,
        "Other AI training",
        "Train other AI (recommendations, tagging, search)",
    ),
    Use.AI_INFERENCE: UseInfo(
        Use.AI_INFERENCE,
        "Input to AI features",
        "Be used as input to AI features (remix, stems, prompts)",
    ),
    Use.DATA_MINING: UseInfo(
        Use.DATA_MINING,
        "Data mining",
        "Text and data mining and analysis",
    ),
}
USE_ORDER: list[str] = list(USES)
