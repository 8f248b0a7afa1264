"""(a) of the API benchmark: a bare FastAPI endpoint returning a constant JSON."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}
