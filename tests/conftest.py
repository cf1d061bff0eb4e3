"""Fixtures the FedAvg tests share: the training writers, and the rounds' client datasets."""
import pytest

from helpers import data


@pytest.fixture(scope="session")
def train_data():
    return data.load_federated_digits().train


@pytest.fixture(scope="session")
def round_datasets(train_data):
    """round_datasets(round_num, clients, epochs): consecutive writers, shuffled by round number.

    One local epoch by default: TFF's Keras wrapper rounds a few operations' last bit differently,
    and many local SGD steps amplify that (see notebook 05, step 6).
    """
    def make(round_num, clients=3, epochs=1):
        ids = train_data.client_ids[round_num * clients:(round_num + 1) * clients]
        return [data.preprocess(train_data.create_tf_dataset_for_client(cid), epochs=epochs, seed=round_num)
                for cid in ids]

    return make
