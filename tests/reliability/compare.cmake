# SPDX-License-Identifier: MIT
# Runs the determinism program built with OpenMP (1 and 3 threads) and without it, and requires
# identical output: the same results, bit for bit, with and without OpenMP and for any thread count.
# Then the num_threads options: OBSERVED_PROGRAM (the same program, reporting the largest team of
# the library's parallel regions) must give the same output with num_threads = 1, 2 and 3 whatever
# OMP_NUM_THREADS says, and no region may use more threads than asked (with OpenMP, 2 must also
# actually be used, or the check would prove nothing).
#   cmake -DOPENMP_PROGRAM=<exe> -DSERIAL_PROGRAM=<exe> -DOBSERVED_PROGRAM=<exe> -DHAS_OPENMP=ON|OFF
#         -P compare.cmake
foreach(run openmp1 openmp3 serial)
  if(run STREQUAL "serial")
    set(cmd "${SERIAL_PROGRAM}")
  elseif(run STREQUAL "openmp1")
    set(cmd ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=1 "${OPENMP_PROGRAM}")
  else()
    set(cmd ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=3 "${OPENMP_PROGRAM}")
  endif()
  execute_process(COMMAND ${cmd} OUTPUT_VARIABLE out_${run} ERROR_VARIABLE err_${run} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${run} run failed (${rc}):\n${err_${run}}")
  endif()
  string(STRIP "${err_${run}}" banner)
  message(STATUS "${run}: ${banner}")
endforeach()
string(REGEX MATCHALL "\n" lines "${out_serial}")
list(LENGTH lines count)
if(count LESS 50)
  message(FATAL_ERROR "the determinism program printed ${count} results, expected more than 50:\n${out_serial}")
endif()
foreach(run openmp1 openmp3)
  if(NOT out_${run} STREQUAL out_serial)
    message(FATAL_ERROR "results differ between the serial build and ${run}:\n--- serial\n${out_serial}\n--- ${run}\n${out_${run}}")
  endif()
endforeach()
message(STATUS "${count} results identical with OpenMP (1 and 3 threads) and without it")

# num_threads: "asked omp" pairs; the team must stay <= asked, and reach it when asked = 2.
foreach(pair "1;4" "2;1" "3;4")
  list(GET pair 0 asked)
  list(GET pair 1 omp)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=${omp} CORESET_TEST_NUM_THREADS=${asked} "${OBSERVED_PROGRAM}"
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "num_threads = ${asked} (OMP_NUM_THREADS=${omp}) run failed (${rc}):\n${err}")
  endif()
  if(NOT out STREQUAL out_serial)
    message(FATAL_ERROR "results differ with num_threads = ${asked} (OMP_NUM_THREADS=${omp}):\n${out}")
  endif()
  if(NOT err MATCHES "largest team ([0-9]+)")
    message(FATAL_ERROR "no team report from the observed program:\n${err}")
  endif()
  set(team "${CMAKE_MATCH_1}")
  if(team GREATER asked)
    message(FATAL_ERROR "num_threads = ${asked} (OMP_NUM_THREADS=${omp}): a parallel region ran on ${team} threads")
  endif()
  if(HAS_OPENMP AND asked EQUAL 2 AND NOT team EQUAL 2)
    message(FATAL_ERROR "num_threads = 2 (OMP_NUM_THREADS=1): the largest team was ${team}, expected 2")
  endif()
  message(STATUS "num_threads = ${asked} (OMP_NUM_THREADS=${omp}): same results, largest team ${team}")
endforeach()
