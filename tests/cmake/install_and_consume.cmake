# Installs manygil's C++ package from BUILD_DIR into a scratch prefix, then configures, builds and
# runs tests/cmake/consumer against it with find_package(manygil). Run with cmake -P.
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("${out}")
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
    endif()
endfunction()

run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" --component dev)
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${consumer_build}" -G Ninja
    "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}" "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DCMAKE_CXX_COMPILER=${CXX}")  # no Python hint: the package knows its CPython
run("${CMAKE_COMMAND}" --build "${consumer_build}")
run("${consumer_build}/consumer")
