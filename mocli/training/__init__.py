"""The training machinery shared by pretraining (``mocli.train``), the pretexts (``mocli.pretexts``) and
finetuning (``mocli.finetune``). Inference and evaluation never import it.

    trainer.py     Trainer (one optimisation step, evaluation), processes (torchrun), schedule, RNG state
    loop.py        fit: epochs, validation, checkpoints (last.pt by steps and by time, best.pt, model.pt), resume
    logs.py        log.jsonl with its CSV and plot views; progress reporters
    runs.py        run folders, --init and --resume checkpoints, config.json, the checks every run shares
    lift_task.py   MotionBERT's lift pretext (LiftTask, StmoLiftTask) and its data; also finetuning's pose3d
    task_data.py   the training and validation sets of the finetune tasks
"""
