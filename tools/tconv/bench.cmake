# tconv bench (owner: CPU backend): measures the machine's sgemm rate with OpenBLAS next to the layers.
find_library(TCONV_OPENBLAS_LIBRARY openblas REQUIRED)
# The executable is created after the fragments are read; link OpenBLAS to it once it exists.
cmake_language(DEFER CALL target_link_libraries tconv_cli PRIVATE ${TCONV_OPENBLAS_LIBRARY})
