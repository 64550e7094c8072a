/*===- not_artifact.c - A shared object that is not an artifact ---------===*\
|*                                                                          *|
|* Loading it must fail with "no symbol moe_artifact_metadata".             *|
\*===----------------------------------------------------------------------===*/

int not_an_artifact(int x) { return x + 1; }
